# The micropython module as on a board: kbd_intr(-1) also makes the REPL's output raw, as a
# Pico's stays raw only on sys.stdout.buffer (mpremote mount turns Ctrl-C off around each of its
# binary exchanges). boot_rom installs it as sys.modules["micropython"].
import micropython as _builtin
from micropython import *  # noqa: F401,F403

import _line


def kbd_intr(chr):
    _builtin.kbd_intr(chr)
    if not _line.app:
        _line.raw(chr == -1)
