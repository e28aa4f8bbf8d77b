"""pumpsim: the clinician side of the pump (client, CLI, deploy)."""

__version__ = "0.1.0"
