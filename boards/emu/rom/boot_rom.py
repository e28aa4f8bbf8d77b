# The virtual board's boot ROM: what a MicroPython board does at reset, on the unix port.
# Mounts the board's flash at "/", runs boot.py, then main.py on a power-up or a soft reset from
# the friendly REPL, then leaves the REPL to the supervisor's pty.
import os
import sys

# The ROM's own modules come from the host's filesystem, so every one is imported before the
# flash hides it.
import _wire  # noqa: E402
import _line  # noqa: E402
import _micropython  # noqa: E402
import machine  # noqa: E402,F401
import select  # noqa: E402,F401
import time  # noqa: E402
import _flash  # noqa: E402

sys.modules["micropython"] = _micropython
_flash.mount(os.getenv("PUMPSIM_FLASH"), int(os.getenv("PUMPSIM_FLASH_BLOCKS") or "0"), _wire)
sys.path[:] = ["", ".frozen", "/lib"]


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
        _wire.batching = True
        _line.app = True
        _line.raw(True)
        try:
            _run("main.py")
        finally:
            _wire.batching = False
            _wire.flush()
            _line.app = False
            _line.raw(False)
            time.to_repl()
        _wire.send_now(_wire.BOOT, 0)


_boot()
del _boot, _run, _exists, _wire, _line, _micropython, machine, select, time, _flash, os, sys
