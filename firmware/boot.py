# Runs on every reset, a soft reset into the raw REPL included (mpremote fs, run, exec,
# soft-reset), and before main.py when main.py runs. A soft reset does not stop a dev board's
# watchdog: while maintenance lasts, a timer goes on feeding it, until the pump's own main loop
# takes over or maintenance reaches its time limit and resets the board into therapy.
try:
    import boardcfg
    from pump import hal
except ImportError:  # no firmware yet
    pass
else:
    hal.resume_maintenance(boardcfg.WDT_MS)
