"""The stroke schedule: exact over months, for every profile and bolus, checked against
arithmetic done here (fractions), not against the firmware's own formula."""

from fractions import Fraction

import pytest

from pump.therapy import CONTINUOUS, DAY_MS, FLEX, MINIMUM, STOP, Bolus, Therapy


def therapy(mode=CONTINUOUS, steps=((0, 500),), conc=2000, stroke_nl=500, start_ms=0):
    t = Therapy(stroke_nl, 6000)
    t.mode, t.steps, t.concentration_ug_per_ml = mode, list(steps), conc
    t.t_ms = start_ms
    return t


def strokes_by(t, until_ms, stroke_nl=500):
    n = 0
    while True:
        due = t.next_stroke_ms()
        if due is None or due > until_ms:
            return n
        t.stroked(due, stroke_nl)
        n += 1


def flex_volume_nl(steps, conc, start_ms, end_ms):
    """The exact integral of a daily flex profile, minute by minute."""
    total = Fraction(0)
    minute_ms = 60_000
    for m in range(start_ms // minute_ms, end_ms // minute_ms):
        minute_of_day = m % 1440
        dose = steps[-1][1]
        for start, d in steps:
            if start <= minute_of_day:
                dose = d
        total += Fraction(dose * 1_000_000, conc) * minute_ms / DAY_MS
    return total


@pytest.mark.parametrize("dose_ug, conc, stroke_nl, days", [
    (500, 2000, 500, 10), (500, 2000, 500, 90), (333, 2000, 500, 7), (100, 500, 250, 3), (1499, 50, 500, 1),
])
def test_continuous_matches_the_integral(dose_ug, conc, stroke_nl, days):
    t = therapy(steps=[(0, dose_ug)], conc=conc, stroke_nl=stroke_nl, start_ms=12345)
    volume_nl = Fraction(dose_ug * 1_000_000, conc) * days
    n = strokes_by(t, 12345 + days * DAY_MS, stroke_nl)
    assert abs(n * stroke_nl - volume_nl) <= stroke_nl


def test_500_ug_a_day_at_2000_is_a_stroke_every_172_8_s():
    t = therapy()
    times = []
    for _ in range(5):
        times.append(t.next_stroke_ms())
        t.stroked(times[-1], 500)
    assert times == [172_800, 345_600, 518_400, 691_200, 864_000]


def test_flex_matches_its_integral_hour_by_hour():
    steps = [(0, 400), (6 * 60, 500), (22 * 60, 600)]  # +20 % at night from 22:00
    t = therapy(FLEX, steps)
    count = 0
    for hour in range(1, 49):
        count += strokes_by(t, hour * 3_600_000)
        expected = flex_volume_nl(steps, 2000, 0, hour * 3_600_000)
        assert abs(count * 500 - expected) <= 500, hour


def test_flex_daily_dose_is_time_weighted():
    assert therapy(FLEX, [(0, 400), (12 * 60, 600)]).daily_dose_ug() == 500


def test_minimum_rate_and_stop():
    t = therapy(MINIMUM, [])
    assert strokes_by(t, 100 * DAY_MS) == 6000 * 100 // 500
    assert therapy(STOP, []).next_stroke_ms() is None


def test_a_bolus_adds_its_volume_on_top():
    t = therapy()
    t.boluses.append(Bolus("clinician", 0, 3_600_000, 25_000, 50))  # 50 µg at 2000 µg/mL: 25 µL
    n = strokes_by(t, DAY_MS)
    assert abs(n * 500 - (250_000 + 25_000)) <= 500


def test_the_bridge_runs_at_the_old_concentration_first():
    t = therapy(conc=1000)
    t.bridge_concentration_ug_per_ml, t.bridge_remaining_nl = 2000, 100_000
    # 100 µL at 250 µL/day (old drug) take 0.4 day; then 500 µL/day.
    n = strokes_by(t, DAY_MS)
    assert abs(n * 500 - (100_000 + 500_000 * Fraction(6, 10))) <= 500
    assert t.bridge_remaining_nl == 0


def test_after_an_outage_missed_strokes_are_not_caught_up():
    t = therapy()
    t.resume_after_outage(10 * 172_800 + 5)
    assert t.next_stroke_ms() > 10 * 172_800 + 5 + 172_000


def test_a_reset_between_strokes_keeps_the_schedule():
    t = therapy()
    t.stroked(172_800, 500)
    t.resume_after_outage(200_000)
    assert t.next_stroke_ms() == 345_600


def test_unprogrammed_has_no_strokes():
    assert Therapy(500, 6000).next_stroke_ms() is None


def test_weekdays_with_their_own_schedule_match_the_integral_over_a_fortnight():
    steps = [(0, 400), (22 * 60, 500)]
    week = {5: [(10 * 60, 600)], 6: [(0, 300), (12 * 60, 450)]}  # days 5 and 6 of each week
    t = therapy(FLEX, steps)
    t.week = week
    expected = Fraction(0)
    count = 0
    for m in range(14 * 1440):
        day, minute = divmod(m, 1440)
        if minute == 0 and m:
            count += strokes_by(t, m * 60_000)
            assert abs(count * 500 - expected) <= 500, day
        today = [d for s, d in week.get(day % 7, steps) if s <= minute]
        # before the day's first step, the previous day's last step runs on
        dose = today[-1] if today else week.get((day - 1) % 7, steps)[-1][1]
        expected += Fraction(dose * 1_000_000, 2000) * 60_000 / DAY_MS
