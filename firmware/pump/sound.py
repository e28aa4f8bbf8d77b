# Plays alarm patterns on the buzzer without blocking: each step is an event of the main loop,
# so the pump keeps pumping and answering while it sounds.
from pump.alarms import PATTERNS

_REST_MS = 1000


class Player:
    def __init__(self, buzzer):
        self._buzzer = buzzer
        self._steps = ()
        self._index = 0
        self.next_ms = None

    def play(self, pattern, now_ms):
        self._steps = PATTERNS[pattern]
        self._index = 0
        self._next(now_ms)

    def _next(self, at_ms):
        if self._index < len(self._steps):
            hz, ms = self._steps[self._index]
            self._index += 1
            self._buzzer.tone(hz)
            self.next_ms = at_ms + ms
        elif self._index == len(self._steps):
            # A second of silence after each pattern, so that two sounds are heard as two.
            self._index += 1
            self._buzzer.off()
            self.next_ms = at_ms + _REST_MS
        else:
            self.next_ms = None

    def update(self, now_ms):
        while self.next_ms is not None and self.next_ms <= now_ms:
            self._next(self.next_ms)
