"""telemetryd: watches long-running AI agents and reports when they leak or spin."""

__version__ = "0.1.0"
