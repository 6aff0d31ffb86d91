"""The behaviour guard: rules over watched trees and their agents' telemetry (docs/guard.md)."""
