# The virtual board's flash as the rig sees it: while a power cut is armed, every write asks the
# rig first, and the rig may let only part of it reach the flash before the power goes.
import builtins

import _wire

_open = builtins.open


class _FlashFile:
    def __init__(self, f):
        self._f = f

    def write(self, data):
        if _wire.armed:
            allowed = _wire.call(_wire.NV_WRITE, len(data))[1]
            if 0 <= allowed < len(data):
                if allowed:
                    self._f.write(data[:allowed])
                self._f.close()
                _wire.send_now(_wire.POWER_LOST, 0)
                while True:  # the supervisor ends this process: the power is gone
                    _wire.call(_wire.SLEEP, -1)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self._f)


def _flash_open(path, mode="r", *args, **kwargs):
    f = _open(path, mode, *args, **kwargs)
    if "w" in mode or "a" in mode or "+" in mode:
        return _FlashFile(f)
    return f


def install():
    builtins.open = _flash_open


def uninstall():
    builtins.open = _open
