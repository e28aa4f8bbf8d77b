"""pumpsim: the clinician side of the pump (client, CLI, deploy)."""
