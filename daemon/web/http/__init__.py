"""The HTTP machinery every listener shares: uvicorn and h11 with our bounds, routes, Host
checks, fairness and the OTLP wire format.
"""
