"""The stroke schedule: exact over months, checked against arithmetic done here."""

from fractions import Fraction

import pytest

from pump.therapy import DAY_MS, Therapy


def schedule(dose_ug, conc, stroke_nl, start_ms=0):
    t = Therapy(stroke_nl)
    t.set_concentration(conc, start_ms)
    t.set_continuous(dose_ug, start_ms)
    return t


def strokes_by(t, until_ms):
    n = 0
    while True:
        due = t.next_stroke_ms()
        if due > until_ms:
            return n
        t.stroked()
        n += 1


@pytest.mark.parametrize("dose_ug, conc, stroke_nl, days", [
    (500, 2000, 500, 10),
    (500, 2000, 500, 90),
    (333, 2000, 500, 7),
    (100, 500, 250, 3),
    (1499, 50, 500, 1),
])
def test_strokes_match_the_integral(dose_ug, conc, stroke_nl, days):
    t = schedule(dose_ug, conc, stroke_nl, start_ms=12345)
    volume_nl = Fraction(dose_ug * 1_000_000, conc) * days
    assert strokes_by(t, 12345 + days * DAY_MS) == volume_nl // stroke_nl


def test_500_ug_a_day_at_2000_is_a_stroke_every_172_8_s():
    t = schedule(500, 2000, 500)
    times = []
    for _ in range(5):
        times.append(t.next_stroke_ms())
        t.stroked()
    assert times == [172_800, 345_600, 518_400, 691_200, 864_000]


def test_rate_is_integer_nl_per_day():
    assert schedule(500, 2000, 500).rate_nl_per_day() == 250_000
    assert isinstance(schedule(333, 2000, 500).rate_nl_per_day(), int)


def test_after_an_outage_missed_strokes_are_not_caught_up():
    t = schedule(500, 2000, 500)
    t.resume_after_outage(10 * 172_800 + 5)
    assert t.next_stroke_ms() == 10 * 172_800 + 5 + 172_800


def test_a_reset_between_strokes_keeps_the_schedule():
    t = schedule(500, 2000, 500)
    t.stroked()
    t.resume_after_outage(200_000)
    assert t.next_stroke_ms() == 345_600


def test_unprogrammed_has_no_strokes():
    assert Therapy(500).next_stroke_ms() is None
