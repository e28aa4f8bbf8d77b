# Rate profiles and the stroke schedule, in integers only.
#
# A profile delivers rate_nl_per_day. Counting from an anchor (a time and the strokes made since),
# stroke k is due once k strokes' volume is due: at anchor_ms + ceil(k·stroke·day / rate).
# Nothing is rounded between strokes, so the schedule never drifts over months.
try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(x):
        return x

DAY_MS = const(86400000)
NL_PER_ML = const(1000000)

NONE = "none"
CONTINUOUS = "continuous"


def _ceil_div(a, b):
    return -(-a // b)


class Therapy:
    def __init__(self, stroke_nl):
        self.stroke_nl = stroke_nl
        self.mode = NONE
        self.daily_dose_ug = 0
        self.concentration_ug_per_ml = 0
        self.anchor_ms = 0
        self.strokes_since_anchor = 0

    def programmed(self):
        return self.mode != NONE and self.daily_dose_ug > 0 and self.concentration_ug_per_ml > 0

    def rate_nl_per_day(self):
        if not self.programmed():
            return 0
        return self.daily_dose_ug * NL_PER_ML // self.concentration_ug_per_ml

    def set_continuous(self, daily_dose_ug, now_ms):
        self.mode = CONTINUOUS
        self.daily_dose_ug = daily_dose_ug
        self.reanchor(now_ms)

    def set_concentration(self, concentration_ug_per_ml, now_ms):
        self.concentration_ug_per_ml = concentration_ug_per_ml
        self.reanchor(now_ms)

    def reanchor(self, now_ms):
        self.anchor_ms = now_ms
        self.strokes_since_anchor = 0

    def due_ms(self, k):
        """When stroke k after the anchor is due (k ≥ 1)."""
        # rate = dose·1e6/conc nL/day, so stroke·day/rate = stroke·day·conc / (dose·1e6).
        return self.anchor_ms + _ceil_div(
            k * self.stroke_nl * DAY_MS * self.concentration_ug_per_ml,
            self.daily_dose_ug * NL_PER_ML,
        )

    def next_stroke_ms(self):
        if not self.programmed():
            return None
        return self.due_ms(self.strokes_since_anchor + 1)

    def stroked(self):
        self.strokes_since_anchor += 1

    def resume_after_outage(self, now_ms):
        """After a reset: keep the schedule if no stroke was missed, else start afresh at now.
        Missed strokes are never caught up: a catch-up would be an unprogrammed bolus."""
        nxt = self.next_stroke_ms()
        if nxt is not None and nxt < now_ms:
            self.reanchor(now_ms)
