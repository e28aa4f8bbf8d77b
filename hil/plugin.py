"""pytest plugin of pumpsim (registered as the `pumpsim` pytest11 entry point)."""
