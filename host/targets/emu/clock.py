"""Pump time on the virtual board, owned by the rig.

stepped: time moves only when the harness grants it (`advance`), then as fast as the board runs.
realtime / xN: time follows the wall clock, scaled by N.

The board's view of time is a sequence of sleeps. A sleep whose end has been granted returns at
once with the clock set to its end; a sleep beyond it parks the board at the granted time until
more time is granted, or until serial input wakes it.
"""

import time

FOREVER = -1


class Clock:
    def __init__(self, now_ms=0, mode="stepped", monotonic=time.monotonic):
        self._monotonic = monotonic
        self._now_ms = now_ms
        self.granted_ms = now_ms
        self.scale = 0
        self._base_wall = monotonic()
        self.set_mode(mode)

    # -- modes ---------------------------------------------------------------------------------

    @property
    def stepped(self):
        return self.scale == 0

    @property
    def mode(self):
        if self.stepped:
            return "stepped"
        return "realtime" if self.scale == 1 else "x%d" % self.scale

    def set_mode(self, mode):
        scale = parse_mode(mode)
        now_ms = self.now_ms()
        self.scale = scale
        self._now_ms = now_ms
        self._base_wall = self._monotonic()
        self.granted_ms = max(self.granted_ms, now_ms)

    # -- reading -------------------------------------------------------------------------------

    def now_ms(self):
        if self.stepped:
            return self._now_ms
        return self._now_ms + int((self._monotonic() - self._base_wall) * 1000 * self.scale)

    def set_now(self, now_ms):
        """Move the clock forward to now_ms (never backwards)."""
        if self.stepped:
            self._now_ms = max(self._now_ms, now_ms)
        else:
            self._now_ms = max(self.now_ms(), now_ms)
            self._base_wall = self._monotonic()
        self.granted_ms = max(self.granted_ms, self._now_ms)

    # -- sleeping ------------------------------------------------------------------------------

    def try_sleep(self, until_ms):
        """The board wants to sleep until until_ms: True if it may wake at once."""
        if self.stepped:
            if until_ms != FOREVER and until_ms <= self.granted_ms:
                self._now_ms = max(self._now_ms, until_ms)
                return True
            self._now_ms = max(self._now_ms, self.granted_ms)
            return False
        return until_ms != FOREVER and self.now_ms() >= until_ms

    def wall_seconds_until(self, until_ms):
        """Running clock: wall seconds until pump time until_ms (None when stepped)."""
        if self.stepped or until_ms == FOREVER:
            return None
        return max(0.0, (until_ms - self.now_ms()) / 1000.0 / self.scale)

    def grant(self, duration_ms):
        """Allow pump time to run duration_ms further; returns the target time."""
        if self.stepped:
            self.granted_ms = max(self.granted_ms, self._now_ms) + duration_ms
            return self.granted_ms
        return self.now_ms() + duration_ms


def parse_mode(mode):
    """'stepped' → 0, 'realtime' → 1, 'x60' → 60."""
    if mode == "stepped":
        return 0
    if mode == "realtime":
        return 1
    if mode.startswith("x") and mode[1:].isdigit() and int(mode[1:]) >= 1:
        return int(mode[1:])
    raise ValueError("clock mode must be stepped, realtime or xN (N ≥ 1), not %r" % mode)
