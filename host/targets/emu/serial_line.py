"""The virtual board's USB serial line as a Pico's looks, byte for byte.

A Pico's MicroPython ends printed lines with \\r\\n (its `print` and `sys.stdout` are cooked),
while `sys.stdout.buffer` writes raw bytes (mpremote mount's protocol, the pump's frames). The
unix port prints a bare \\n either way, so the board marks in its output (with a marker only its
supervisor knows) where raw output starts and ends: while the application runs, and while REPL
code has Ctrl-C off (`micropython.kbd_intr(-1)`, as mpremote mount does around each exchange).
Everything else is REPL text, and a bare \\n in it becomes \\r\\n. The banner names the board, as a
Pico's names its own.
"""

import time

# A byte sequence that may be the start of a marker or of the banner waits this long for the rest.
_HOLD_S = 0.005


class BoardOutput:
    """The board's output on its way to the host: markers taken out, REPL text cooked."""

    def __init__(self, mark, banner_from=b"", banner_to=b""):
        self.mark = mark  # the marker's head; one byte after it says R (raw) or C (cooked)
        self.raw = False
        self._last_cr = False
        self._held = b""
        self.held_since = None
        self._banner = (banner_from, banner_to) if banner_from else None

    def feed(self, data):
        """What the host gets of data (which may end before a marker or banner is whole)."""
        data = self._held + data
        self._held = b""
        out = []
        mark = self.mark
        while True:
            at = data.find(mark)
            if at < 0:
                break
            end = at + len(mark) + 1
            if end > len(data):
                break  # the marker is not whole yet: held below
            out.append(self._pass(data[:at]))
            self.raw = data[end - 1] == ord("R")
            data = data[end:]
        keep = self._partial(data)
        if keep:
            self._held = data[len(data) - keep:]
            data = data[:len(data) - keep]
            self.held_since = time.monotonic()
        else:
            self.held_since = None
        out.append(self._pass(data))
        return b"".join(out)

    def release(self):
        """What was held for too long goes out as it is: it was not a marker."""
        held, self._held, self.held_since = self._held, b"", None
        return self._pass(held)

    def hold_wait_s(self):
        if self.held_since is None:
            return None
        return max(0.0, self.held_since + _HOLD_S - time.monotonic())

    def _partial(self, data):
        """How many bytes at the end of data could begin a marker (or the banner's text)."""
        heads = [self.mark + b"R"]
        if self._banner and not self.raw:
            heads.append(self._banner[0])
        best = 0
        for head in heads:
            for n in range(min(len(head) - 1, len(data)), best, -1):
                if data.endswith(head[:n]):
                    best = n
                    break
        return best

    def _pass(self, data):
        if not data or self.raw:
            return data
        if self._banner:
            data = data.replace(*self._banner)
        if b"\n" not in data:
            self._last_cr = data.endswith(b"\r")
            return data
        cooked = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._last_cr and data.startswith(b"\n"):
            cooked = cooked[1:]  # its \r came in the chunk before
        self._last_cr = data.endswith(b"\r")
        return cooked


class HostInput:
    """The host's bytes on their way to the board's REPL. A Pico's readline takes \\r as Enter and
    ignores \\n; the unix port takes \\n as Enter as well, so a terminal's \\r\\n would enter twice."""

    def __init__(self):
        self._last_cr = False

    def feed(self, data, friendly):
        if friendly and b"\n" in data:
            if self._last_cr and data.startswith(b"\n"):
                data = data[1:]
            data = data.replace(b"\r\n", b"\r")
        self._last_cr = data.endswith(b"\r")
        return data
