"""Prices, spend and budgets: what a session or agent may still spend."""
