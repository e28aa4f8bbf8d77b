"""After a reset, volume owed from before the outage is never delivered at once (docs/safety.md:
"missed volume is never caught up, since a catch-up would be an unprogrammed bolus")."""

from pump.therapy import CONTINUOUS, DAY_MS, Therapy

STROKE_NL = 500
STROKE_MS = 172_800  # 500 µg/day of 2000 µg/mL in 500 nL strokes


def test_three_strokes_owed_at_a_reset_are_not_made_at_once():
    t = Therapy(STROKE_NL, 6000)
    t.mode, t.steps, t.concentration_ug_per_ml = CONTINUOUS, [(0, 500)], 2000
    t.accrue(3 * STROKE_MS)  # three strokes owed when the power went
    now_ms = 10 * STROKE_MS
    t.resume_after_outage(now_ms)
    # At most what one stroke interval owes, from now on: the first stroke is not before now.
    assert now_ms < t.next_stroke_ms() <= now_ms + STROKE_MS
    t.stroked(t.next_stroke_ms(), STROKE_NL)
    assert t.next_stroke_ms() - now_ms >= STROKE_MS
