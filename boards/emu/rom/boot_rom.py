# The virtual board's boot ROM: what a MicroPython board does at reset, on the unix port.
# Runs boot.py, then main.py on a power-up or a soft reset from the friendly REPL, then leaves
# the REPL to the supervisor's pty. The working directory is the board's flash.
import os
import sys

sys.path[:] = [sys.path[0], "", "lib"]

import _wire  # noqa: E402
import _line  # noqa: E402
import _micropython  # noqa: E402
import time  # noqa: E402

sys.modules["micropython"] = _micropython


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _run(path):
    with open(path) as source:
        code = source.read()
    try:
        exec(code, {"__name__": "__main__", "__file__": path})
    except KeyboardInterrupt:
        pass
    except SystemExit:
        raise
    except BaseException as exc:  # a crashing script leaves the REPL, as on a board
        sys.print_exception(exc)


def _boot():
    app = os.getenv("PUMPSIM_BOOT") == "app" and _exists("main.py")
    _wire.send_now(_wire.BOOT, 1 if app else 0)
    time.app = app  # the rig owns time from power-up to the application's end
    if _exists("boot.py"):
        _run("boot.py")
    if app:
        import _flash

        _flash.install()
        _wire.batching = True
        _line.app = True
        _line.raw(True)
        try:
            _run("main.py")
        finally:
            _wire.batching = False
            _wire.flush()
            _flash.uninstall()
            _line.app = False
            _line.raw(False)
            time.to_repl()
        _wire.send_now(_wire.BOOT, 0)


_boot()
del _boot, _run, _exists, _wire, _line, _micropython, time, os, sys
