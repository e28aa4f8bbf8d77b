# The virtual board's USB serial line. A Pico's print() and sys.stdout are cooked (\n goes out as
# \r\n) and its sys.stdout.buffer is raw; the unix port's are all raw. So the board marks in its
# output where raw bytes start and stop (the marker is known only to its supervisor, which takes
# it out and cooks the rest): while the application runs, and while REPL code has Ctrl-C off.
import os
import sys

_mark = b"\x1b_" + (os.getenv("PUMPSIM_MARK") or "").encode() + b";"
_out = sys.stdout.buffer
app = False  # the application runs: all its output is raw, whatever its kbd_intr


def raw(on):
    _out.write(_mark + (b"R" if on else b"C"))
