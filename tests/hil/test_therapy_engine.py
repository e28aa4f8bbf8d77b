"""Every profile and bolus kind, run for pump days on a pump with its rig, matches the integral the
harness computes on its own (pumpsim.hil.verify), hour by hour, within one stroke."""

from fractions import Fraction

import pytest

from pumpsim.errors import Refused
from pumpsim.hil.verify import (DAY_MS, bolus_volume_nl, check_delivered, continuous_volume_nl,
                                daily_profile_volume_nl)

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

HOUR_MS = 3_600_000
CONC = 2000


@pytest.fixture
def filled(bench):
    client = bench.client()
    client.refill(volume_ul=40_000, concentration_ug_per_ml=CONC)
    return bench, client


def hour_by_hour(bench, hours, expected_between):
    """Advance hour by hour; each hour's rig volume and the running total match the harness."""
    start = bench.rig.measure()
    t0 = start["clock_ms"]
    previous = start
    for hour in range(hours):
        bench.advance_ms(HOUR_MS)
        now = bench.rig.measure()
        stroke_nl = now["stroke_nl"]
        a, b = t0 + hour * HOUR_MS, t0 + (hour + 1) * HOUR_MS
        check_delivered(now["delivered_nl"] - start["delivered_nl"], expected_between(t0, b), stroke_nl,
                        "total after hour %d" % (hour + 1))
        check_delivered(now["delivered_nl"] - previous["delivered_nl"], expected_between(a, b),
                        2 * stroke_nl, "hour %d alone" % (hour + 1))
        previous = now
    return previous


def test_flex_night_rate_two_days_hour_by_hour(filled):
    bench, client = filled
    # +20 % at night, starting two hours before the desired effect (001, 004 seeds)
    steps = [(0, 600), (7 * 60, 500), (20 * 60, 600)]
    start_ms = bench.rig.time()["clock_ms"]
    client.program_flex(steps)
    status = client.status()
    assert status["mode"] == "flex" and status["steps"] == ["00:00=600", "07:00=500", "20:00=600"]
    hour_by_hour(bench, 48, lambda a, b: daily_profile_volume_nl(steps, CONC, start_ms, b)
                 - daily_profile_volume_nl(steps, CONC, start_ms, a))


def test_continuous_three_days_hour_by_hour(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=700)
    hour_by_hour(bench, 72, lambda a, b: continuous_volume_nl(700, CONC, b - a))


def test_minimum_rate_keeps_the_catheter_open(filled):
    bench, client = filled
    client.program_minimum_rate(confirm=True)
    assert client.status()["rate_nl_per_day"] == 6000
    before = bench.rig.measure()
    bench.advance_days(10)
    after = bench.rig.measure()
    check_delivered(after["delivered_nl"] - before["delivered_nl"], 60_000, after["stroke_nl"])


def test_stop_warns_and_stops(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    reply = client.program_stop(confirm=True)
    assert "withdrawal" in reply["warning"] or "abrupt" in reply["warning"]
    assert reply["state"] == "stopped"
    pulses = bench.rig.measure()["pulses"]
    bench.advance_days(2)
    assert bench.rig.measure()["pulses"] == pulses


def test_a_50_ug_bolus_over_an_hour_adds_25_ul_then_the_profile_resumes(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    start_ms = bench.rig.time()["clock_ms"]
    reply = client.bolus(dose_ug=50, minutes=60)
    assert reply["bolus"]["volume_ul"] == 25.0
    bolus_nl = 25_000
    assert continuous_volume_nl(50, CONC, DAY_MS) == bolus_nl  # 50 µg at 2000 µg/mL is 25 µL
    hour_by_hour(bench, 72, lambda a, b: continuous_volume_nl(500, CONC, b - a)
                 + bolus_volume_nl(bolus_nl, start_ms, HOUR_MS, a, b))
    assert client.status()["boluses"] == []
    events = [e["event"] for e in client.log()]
    assert "bolus_start" in events and "bolus_end" in events


def test_priming_bolus_fills_the_catheter_volume(filled):
    bench, client = filled
    client.program_minimum_rate(confirm=True)
    client.config(catheter_ul=50)  # 150 µL of tubing and 50 µL of catheter to fill
    start_ms = bench.rig.time()["clock_ms"]
    client.bolus_prime(volume_ul=200, minutes=30)
    hour_by_hour(bench, 72, lambda a, b: Fraction(6000 * (b - a), DAY_MS)
                 + bolus_volume_nl(200_000, start_ms, 30 * 60_000, a, b))


def test_patient_boluses_respect_lockout_and_daily_maximum(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    client.program_patient_bolus(dose_ug=20, lockout_minutes=120, max_per_day=3)
    start = bench.rig.measure()
    client.bolus_patient()
    with pytest.raises(Refused, match="locked out") as refused:
        client.bolus_patient()
    assert refused.value.limit == "patient_lockout"
    bench.advance_ms(2 * HOUR_MS)
    client.bolus_patient()
    bench.advance_ms(2 * HOUR_MS)
    client.bolus_patient()
    bench.advance_ms(2 * HOUR_MS)
    with pytest.raises(Refused, match="maximum") as refused:
        client.bolus_patient()
    assert refused.value.limit == "patient_max_per_day"
    bench.advance_ms(18 * HOUR_MS)
    end = bench.rig.measure()
    # Three boluses of 20 µg (10 µL each) on top of one day of 500 µg: nothing more.
    check_delivered(end["delivered_nl"] - start["delivered_nl"],
                    continuous_volume_nl(500, CONC, 24 * HOUR_MS) + 3 * 10_000, end["stroke_nl"])
    refused_events = [e for e in client.log() if e["event"] == "bolus_refused"]
    assert [e["reason"] for e in refused_events] == ["patient_lockout", "patient_max_per_day"]


@pytest.mark.parametrize("call, limit", [
    (lambda c: c.program_continuous(daily_dose_ug=2500), "max_daily_dose_ug"),
    (lambda c: c.program_flex([(0, 500), (600, 2400)]), "max_daily_dose_ug"),
    (lambda c: c.bolus(dose_ug=150, minutes=60), "max_bolus_ug_per_24h"),
    (lambda c: c.refill(volume_ul=20_000, concentration_ug_per_ml=750), "allowed_concentrations"),
    (lambda c: c.program_patient_bolus(dose_ug=500, lockout_minutes=60, max_per_day=4), "max_bolus_ug_per_24h"),
])
def test_the_dose_guard_names_the_limit_and_changes_nothing(filled, call, limit):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    before = client.status()
    with pytest.raises(Refused) as refused:
        call(client)
    assert refused.value.code == "E_LIMIT" and refused.value.limit == limit
    after = client.status()
    for key in ("mode", "daily_dose_ug", "concentration_ug_per_ml", "steps", "boluses", "reservoir_nl",
                "patient_bolus"):
        assert after[key] == before[key], key


def test_bolus_doses_add_up_to_the_24_hour_limit(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    start = bench.rig.measure()
    client.bolus(dose_ug=60, minutes=10)
    with pytest.raises(Refused) as refused:
        client.bolus(dose_ug=50, minutes=10)  # 110 µg in 24 h
    assert refused.value.limit == "max_bolus_ug_per_24h"
    bench.advance_days(1.01)
    # The refused 50 µg delivered nothing: a day of the profile and the 60 µg (30 µL) only.
    first_ms = bench.rig.time()["clock_ms"] - start["clock_ms"]
    end = bench.rig.measure()
    check_delivered(end["delivered_nl"] - start["delivered_nl"],
                    continuous_volume_nl(500, CONC, first_ms) + 30_000, end["stroke_nl"], "the first day")
    # A day later the 60 µg are out of the window: the same 50 µg is given, 25 µL more.
    reply = client.bolus(dose_ug=50, minutes=10)
    assert (reply["bolus"]["dose_ug"], reply["bolus"]["volume_ul"]) == (50, 25.0)
    bench.advance_ms(HOUR_MS)
    later = bench.rig.measure()
    check_delivered(later["delivered_nl"] - end["delivered_nl"],
                    continuous_volume_nl(500, CONC, HOUR_MS) + 25_000, later["stroke_nl"], "the bolus hour")


def test_weekdays_of_their_own_hour_by_hour_for_eight_days(filled):
    bench, client = filled
    steps = [(0, 500), (20 * 60, 600)]
    week = {5: [(9 * 60, 400)], 6: [(9 * 60, 400), (21 * 60, 650)]}  # a quieter weekend
    start_ms = bench.rig.time()["clock_ms"]
    status = client.program_flex(steps, week)
    assert status["week"] == {"5": ["09:00=400"], "6": ["09:00=400", "21:00=650"]}
    hour_by_hour(bench, 8 * 24, lambda a, b: daily_profile_volume_nl(steps, CONC, start_ms, b, week)
                 - daily_profile_volume_nl(steps, CONC, start_ms, a, week))
