"""Client of the rig: the instrument beside the pump that counts its motor's pulses and owns time.

The same protocol reaches the virtual board's supervisor (socket://127.0.0.1:PORT) and a physical
rig on its own serial port (docs/protocol.md, "Rig protocol"). Everything the harness checks
against a programmed dose comes from here, never from the firmware's own report.
"""

from __future__ import annotations

import json
import logging
import time

import serial

try:
    from pumpsim.errors import PumpsimError as _Base
except ImportError:  # pragma: no cover - the host package is installed alongside
    _Base = Exception


class RigError(_Base):
    """The rig refused a request, did not answer, or is not there."""


DAY_MS = 86_400_000
log = logging.getLogger("pumpsim.rig")  # `pumpsim -v`: each rig request and its reply


class Rig:
    def __init__(self, port, timeout_s=10.0):
        self._port = port
        self.timeout_s = timeout_s

    @classmethod
    def open(cls, url: str, timeout_s: float = 10.0) -> "Rig":
        try:
            port = serial.serial_for_url(url, timeout=0.2)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise RigError("cannot open the rig at %s: %s" % (url, exc)) from None
        # What the rig said before this client came is no answer to it.
        port.reset_input_buffer()
        return cls(port, timeout_s)

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, line: str, timeout_s: float | None = None):
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        try:
            log.debug("-> %s", line)
            self._port.write(line.encode("ascii") + b"\n")
            reply = self._readline(timeout_s)
            log.debug("<- %s", reply.rstrip())
        except (serial.SerialException, OSError) as exc:
            raise RigError("the rig went away: %s" % exc) from None
        try:
            data = json.loads(reply)
        except ValueError:
            raise RigError("the rig answered %r to %r" % (reply[:80], line)) from None
        if isinstance(data, dict) and "error" in data:
            raise RigError("rig refused %r: %s" % (line, data["error"]))
        return data

    def _readline(self, timeout_s):
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = self._port.readline()
            buf += chunk
            if not chunk and deadline is not None and time.monotonic() > deadline:
                raise RigError("the rig did not answer within %.0f s" % timeout_s)
        return buf.decode("ascii", "replace")

    def drain(self, quiet_s):
        """Discard what the rig says until it has said nothing for quiet_s (late replies to
        requests that timed out)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            if self._port.read(4096):
                quiet_since = time.monotonic()

    # -- requests ------------------------------------------------------------------------------

    def hello(self) -> dict:
        return self.request("hello")

    def measure(self) -> dict:
        """The rig's own count: pulses, stroke_nl, delivered_nl, delivered_ul, clock_ms."""
        return self.request("measure")

    def time(self) -> dict:
        return self.request("time")

    def clock(self, mode: str) -> dict:
        return self.request("clock %s" % mode)

    def advance(self, duration_ms: int, timeout_s: float | None = None) -> dict:
        """Move pump time forward; returns once the board's clock has reached it."""
        if not isinstance(duration_ms, int) or duration_ms < 0:
            raise RigError("advance takes a whole, non-negative number of ms, not %r" % (duration_ms,))
        # Stepped time runs as fast as the board can go: allow for a slow machine.
        if timeout_s is None:
            timeout_s = max(self.timeout_s, 60.0 + duration_ms / DAY_MS * 5.0)
        return self.request("advance %d" % duration_ms, timeout_s=timeout_s)

    def reset(self) -> dict:
        return self.request("reset")

    def power_cycle(self, at_write: int | None = None) -> dict:
        """Cut and restore the board's power now, or during its at_write-th write to flash."""
        return self.request("power-cycle" if at_write is None else "power-cycle %d" % at_write)

    def battery(self, millivolts: int | None = None) -> dict:
        """Set the battery voltage the board's ADC reads (None: read it)."""
        return self.request("battery" if millivolts is None else "battery %d" % millivolts)

    def stall(self, mode: str, attempts: int | None = None) -> dict:
        """Motor stall: "on", "off", "intermittent" (every other step fails), or "next" with
        attempts: exactly that many of the next motor attempts fail, then the motor turns."""
        if mode == "next":
            return self.request("stall next %s" % attempts)
        return self.request("stall %s" % mode)

    def tones(self) -> list[dict]:
        """What the buzzer played: t_s, t_ms, duration_ms, pattern ("two-tone" or "single")."""
        return self.request("tones")["tones"]

    def trace(self) -> list[int]:
        """The pump time in ms of every stroke the rig counted, oldest first, paged through
        `trace FROM`. RigError from a rig that keeps no trace (it does not know the request)."""
        strokes: list[int] = []
        while True:
            page = self.request("trace %d" % len(strokes))
            strokes += page["strokes_ms"]
            if not page["strokes_ms"] or len(strokes) >= page["total"]:
                return strokes

    def hang(self) -> dict:
        return self.request("hang")

    def corrupt_flash(self, target: str = "state") -> dict:
        return self.request("corrupt-flash %s" % target)

    def rtc(self, mode: str | None = None) -> dict:
        """The board's RTC from its next power-up or reset: "kept" (it reads rig time) or
        "volatile" (it restarts at 2021-01-01 at every power-up and reset, as a Pico's); None
        reads the setting."""
        return self.request("rtc" if mode is None else "rtc %s" % mode)
