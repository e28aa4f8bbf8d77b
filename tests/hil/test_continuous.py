"""Continuous infusion on a pump with its rig: what the rig counts is what was programmed.

20 mL of 2000 µg/mL at 500 µg/day is 250 µL a day: the low-reservoir alarm (2 mL left) is due at
day 72 and the empty-reservoir alarm (0.5 mL left) at day 78. The expected figures come from
pumpsim.hil.verify, never from the firmware.
"""

from fractions import Fraction

import pytest

from pumpsim.hil.verify import check_delivered, continuous_volume_nl, days_until

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

FILL_UL = 20_000
CONCENTRATION_UG_PER_ML = 2000
DOSE_UG_PER_DAY = 500
DAY_MS = 86_400_000


@pytest.fixture
def infusing(bench):
    client = bench.client()
    client.refill(volume_ul=FILL_UL, concentration_ug_per_ml=CONCENTRATION_UG_PER_ML)
    client.program_continuous(daily_dose_ug=DOSE_UG_PER_DAY)
    start_ms = bench.rig.time()["clock_ms"]
    return bench, client, start_ms


def alarm_codes(status):
    return {alarm["code"] for alarm in status["alarms"]}


def test_ten_days_deliver_the_programmed_volume(infusing):
    bench, client, start_ms = infusing
    before_nl = bench.rig.measure()["delivered_nl"]
    bench.advance_days(10)
    measured = bench.rig.measure()
    expected_nl = continuous_volume_nl(DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML, 10 * DAY_MS)
    assert expected_nl == 2_500_000
    check_delivered(measured["delivered_nl"] - before_nl, expected_nl, measured["stroke_nl"])
    status = client.status()
    assert status["state"] == "infusing"
    assert status["mode"] == "continuous"
    # The firmware's own reservoir agrees with the rig within one stroke.
    rig_reservoir_nl = FILL_UL * 1000 - (measured["delivered_nl"] - before_nl)
    assert abs(status["reservoir_nl"] - rig_reservoir_nl) <= measured["stroke_nl"]
    assert abs(Fraction(str(status["reservoir_ul"])) * 1000 - rig_reservoir_nl) <= measured["stroke_nl"]
    assert status["clock_s"] == (start_ms + 10 * DAY_MS) // 1000


def test_each_day_of_a_week_matches_the_profile(infusing):
    bench, client, _ = infusing
    per_day_nl = continuous_volume_nl(DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML, DAY_MS)
    for day in range(7):
        before = bench.rig.measure()["delivered_nl"]
        bench.advance_days(1)
        after = bench.rig.measure()
        check_delivered(after["delivered_nl"] - before, per_day_nl, after["stroke_nl"], "day %d" % day)


def test_low_reservoir_alarm_is_due_at_day_72(infusing):
    bench, client, _ = infusing
    low_day = days_until(FILL_UL * 1000 - 2_000_000, DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML)
    assert low_day == 72
    bench.advance_days(71.9)
    assert "LOW_RESERVOIR" not in alarm_codes(client.status())
    bench.advance_days(0.2)
    status = client.status()
    low = [a for a in status["alarms"] if a["code"] == "LOW_RESERVOIR"]
    assert low and low[0]["priority"] == "medium"
    assert status["state"] == "infusing"  # non-critical: therapy goes on


def test_empty_reservoir_stops_the_pump_at_day_78(infusing):
    bench, client, _ = infusing
    empty_day = days_until(FILL_UL * 1000 - 500_000, DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML)
    assert empty_day == 78
    bench.advance_days(77.9)
    assert "EMPTY_RESERVOIR" not in alarm_codes(client.status())
    bench.advance_days(0.2)
    status = client.status()
    empty = [a for a in status["alarms"] if a["code"] == "EMPTY_RESERVOIR"]
    assert empty and empty[0]["priority"] == "high"
    assert abs(empty[0]["since_s"] - 78 * 86400) <= 0.1 * 86400
    assert status["state"] == "alarm"
    stopped_at = bench.rig.measure()
    check_delivered(stopped_at["delivered_nl"], FILL_UL * 1000 - 500_000, stopped_at["stroke_nl"])
    bench.advance_days(5)
    assert bench.rig.measure()["pulses"] == stopped_at["pulses"]


@pytest.mark.pumpsim_needs("power-cut")
def test_therapy_resumes_after_a_power_cut(infusing):
    bench, client, _ = infusing
    bench.advance_days(1)
    bench.rig.power_cycle()
    bench.advance_days(1)
    measured = bench.rig.measure()
    expected_nl = continuous_volume_nl(DOSE_UG_PER_DAY, CONCENTRATION_UG_PER_ML, 2 * DAY_MS)
    check_delivered(measured["delivered_nl"], expected_nl, measured["stroke_nl"])
    status = bench.client().status()
    assert status["state"] == "infusing"
    assert abs(status["reservoir_nl"] - (FILL_UL * 1000 - measured["delivered_nl"])) <= measured["stroke_nl"]
