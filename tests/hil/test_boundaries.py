"""Every hard limit, over the serial line, at the limit and one step past it.

The limits are the label's and the drug library's numbers written out here, not read from the
firmware; what was delivered is the rig's count, and what should have been is the harness's own
integral (pumpsim.hil.verify). Pump time is stepped: it moves only when the test moves it, so "now"
is the rig's clock.
"""

import math
from fractions import Fraction

import pytest

from pumpsim.errors import Refused
from pumpsim.hil.verify import DAY_MS, check_delivered, continuous_volume_nl, daily_profile_volume_nl

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

MIN_MS = 60_000
HOUR_MS = 3_600_000
CONC = 2000  # µg/mL
FILL_UL = 20_000

MAX_DAILY_DOSE_UG = 2000
MAX_BOLUS_UG_PER_24H = 100
DISCREPANCY_LIMIT_PCT = Fraction(145, 10)
MOTOR_ATTEMPTS = 3
LOW_RESERVOIR_NL = 2_000_000
EMPTY_RESERVOIR_NL = 500_000


@pytest.fixture
def filled(bench):
    client = bench.client()
    client.refill(volume_ul=FILL_UL, concentration_ug_per_ml=CONC)
    return bench, client


@pytest.fixture
def infusing(filled):
    bench, client = filled
    client.program_continuous(daily_dose_ug=500)
    return bench, client, bench.rig.time()["clock_ms"]


def now_ms(bench):
    return bench.rig.time()["clock_ms"]


def delivered_nl(bench):
    return bench.rig.measure()["delivered_nl"]


def alarm(client, code):
    found = [a for a in client.status()["alarms"] if a["code"] == code]
    return found[0] if found else None


def refused(call, limit):
    """The firmware's own refusal: E_LIMIT naming the limit."""
    with pytest.raises(Refused) as refusal:
        call()
    assert (refusal.value.code, refusal.value.limit) == ("E_LIMIT", limit)


def therapy(status):
    keep = ("mode", "daily_dose_ug", "steps", "boluses", "reservoir_nl", "patient_bolus")
    return {k: status[k] for k in keep}


# -- daily dose ------------------------------------------------------------------------------------


def test_a_continuous_dose_of_2000_ug_a_day_is_delivered_and_2001_refused(filled):
    bench, client = filled
    before = therapy(client.status())
    refused(lambda: client.program_continuous(daily_dose_ug=MAX_DAILY_DOSE_UG + 1), "max_daily_dose_ug")
    assert therapy(client.status()) == before
    client.program_continuous(daily_dose_ug=MAX_DAILY_DOSE_UG)
    start = delivered_nl(bench)
    bench.advance_ms(6 * HOUR_MS)
    # The refusal left nothing behind and the accepted dose runs at its own rate, not a capped one.
    check_delivered(delivered_nl(bench) - start, continuous_volume_nl(MAX_DAILY_DOSE_UG, CONC, 6 * HOUR_MS),
                    500)
    refused(lambda: client.program_continuous(daily_dose_ug=MAX_DAILY_DOSE_UG + 1), "max_daily_dose_ug")
    assert client.status()["daily_dose_ug"] == MAX_DAILY_DOSE_UG


def test_a_flex_step_of_2000_ug_a_day_is_delivered_and_2001_refused(filled):
    bench, client = filled
    before = therapy(client.status())
    refused(lambda: client.program_flex([(0, 500), (360, MAX_DAILY_DOSE_UG + 1)]), "max_daily_dose_ug")
    assert therapy(client.status()) == before
    steps = [(0, 500), (360, MAX_DAILY_DOSE_UG)]
    start_ms, start = now_ms(bench), delivered_nl(bench)
    client.program_flex(steps)
    bench.advance_ms(12 * HOUR_MS)
    check_delivered(delivered_nl(bench) - start,
                    daily_profile_volume_nl(steps, CONC, start_ms, start_ms + 12 * HOUR_MS), 500)


# -- boluses within 24 h ---------------------------------------------------------------------------


def test_boluses_add_up_to_exactly_100_ug_in_24_hours_and_not_one_more(infusing):
    bench, client, t0 = infusing
    client.bolus(dose_ug=60, minutes=10)
    rest = MAX_BOLUS_UG_PER_24H - 60
    refused(lambda: client.bolus(dose_ug=rest + 1, minutes=10), "max_bolus_ug_per_24h")  # 101 µg
    client.bolus(dose_ug=rest, minutes=10)  # exactly 100 µg
    refused(lambda: client.bolus(dose_ug=1, minutes=10), "max_bolus_ug_per_24h")
    bench.advance_ms(HOUR_MS)
    # 100 µg of boluses at 2000 µg/mL is 50 µL, on top of an hour of the profile: the refused
    # ones delivered nothing.
    check_delivered(delivered_nl(bench), continuous_volume_nl(500, CONC, HOUR_MS) + 50_000, 500)


def test_the_24_hour_window_counts_a_bolus_of_23h59_ago_and_not_one_of_24h01_ago(infusing):
    bench, client, t0 = infusing
    client.bolus(dose_ug=60, minutes=10)
    over = MAX_BOLUS_UG_PER_24H - 60 + 1  # with the 60 µg still in the window, 101 µg
    bench.advance_ms(24 * HOUR_MS - MIN_MS)
    refused(lambda: client.bolus(dose_ug=over, minutes=10), "max_bolus_ug_per_24h")
    bench.advance_ms(2 * MIN_MS)
    client.bolus(dose_ug=over, minutes=10)
    bench.advance_ms(HOUR_MS)
    elapsed_ms = now_ms(bench) - t0
    check_delivered(delivered_nl(bench), continuous_volume_nl(500, CONC, elapsed_ms)
                    + continuous_volume_nl(60 + over, CONC, DAY_MS), 500)


# -- patient boluses -------------------------------------------------------------------------------


def test_a_patient_bolus_is_refused_one_second_before_the_lockout_ends_and_given_at_its_end(infusing):
    bench, client, t0 = infusing
    client.program_patient_bolus(dose_ug=10, lockout_minutes=120, max_per_day=6)
    client.bolus_patient()
    bench.advance_ms(120 * MIN_MS - 1000)
    refused(client.bolus_patient, "patient_lockout")
    bench.advance_ms(1000)
    assert client.bolus_patient()["bolus"]["kind"] == "patient"
    bench.advance_ms(HOUR_MS)
    # Two patient boluses of 10 µg (5 µL each), no third.
    check_delivered(delivered_nl(bench), continuous_volume_nl(500, CONC, now_ms(bench) - t0) + 10_000, 500)


def test_the_nth_patient_bolus_of_a_day_is_given_and_the_next_refused(infusing):
    bench, client, t0 = infusing
    most = 4
    # 20 µg each: a fifth would still be within the 100 µg a day, so only the maximum refuses it.
    client.program_patient_bolus(dose_ug=20, lockout_minutes=30, max_per_day=most)
    for _ in range(most):
        client.bolus_patient()
        bench.advance_ms(30 * MIN_MS)
    refused(client.bolus_patient, "patient_max_per_day")
    bench.advance_ms(HOUR_MS)
    check_delivered(delivered_nl(bench), continuous_volume_nl(500, CONC, now_ms(bench) - t0)
                    + most * 10_000, 500)
    reasons = [e["reason"] for e in client.log() if e["event"] == "bolus_refused"]
    assert reasons == ["patient_max_per_day"]


# -- refill discrepancy ----------------------------------------------------------------------------


@pytest.mark.parametrize("off_pct, flagged", [
    (Fraction("14.4"), False),   # withdrawn 14.4 % less than calculated
    (Fraction("14.6"), True),
    (Fraction("-14.4"), False),  # withdrawn 14.4 % more than calculated: the pump under-delivered
    (Fraction("-14.6"), True),
])
def test_a_refill_discrepancy_is_flagged_only_beyond_14_5_percent_either_way(infusing, off_pct, flagged):
    bench, client, t0 = infusing
    bench.advance_days(2)
    # What the pump should hold, from the rig: 19.5 mL after 2 days at 250 µL a day.
    calculated_nl = FILL_UL * 1000 - delivered_nl(bench)
    assert calculated_nl == FILL_UL * 1000 - continuous_volume_nl(500, CONC, 2 * DAY_MS)
    withdrawn_ul = calculated_nl * (100 - off_pct) / 100 / 1000
    assert withdrawn_ul.denominator == 1
    reply = client.refill(volume_ul=FILL_UL, concentration_ug_per_ml=CONC, withdrawn_ul=int(withdrawn_ul))
    assert reply["flagged"] is flagged
    assert Fraction(str(reply["discrepancy_pct"])) == off_pct  # positive: less came out
    assert (abs(off_pct) > DISCREPANCY_LIMIT_PCT) is flagged
    logged = [e for e in client.log() if e["event"] == "refill"][-1]
    assert logged["flagged"] is flagged and logged["discrepancy_pct_x1000"] == off_pct * 1000


def test_a_configured_discrepancy_limit_is_the_one_applied(infusing):
    bench, client, t0 = infusing
    client.config(discrepancy_limit_permille=100)  # 10 %
    bench.advance_days(4)
    calculated_nl = FILL_UL * 1000 - delivered_nl(bench)  # 19 mL
    for off_pct, flagged in ((Fraction("9.9"), False), (Fraction("10.1"), True)):
        withdrawn_ul = calculated_nl * (100 - off_pct) / 100 / 1000
        reply = client.refill(volume_ul=calculated_nl // 1000, concentration_ug_per_ml=CONC,
                              withdrawn_ul=int(withdrawn_ul))
        assert (Fraction(str(reply["discrepancy_pct"])), reply["flagged"]) == (off_pct, flagged)


# -- motor attempts --------------------------------------------------------------------------------


STROKE_MS = 172_800  # 500 nL of 2000 µg/mL at 500 µg/day


@pytest.mark.pumpsim_needs("motor-stall")
def test_a_stroke_that_turns_on_its_third_attempt_is_delivered_once(infusing):
    bench, client, t0 = infusing
    bench.advance_days(1)
    pulses = bench.rig.measure()["pulses"]
    bench.rig.stall("next", MOTOR_ATTEMPTS - 1)
    bench.advance_ms(STROKE_MS)
    assert bench.rig.measure()["pulses"] == pulses + 1
    status = client.status()
    assert status["state"] == "infusing" and alarm(client, "MOTOR_STALL") is None
    assert status["delivered_nl"] == bench.rig.measure()["delivered_nl"]  # counted once
    bench.advance_days(1)
    check_delivered(delivered_nl(bench), continuous_volume_nl(500, CONC, 2 * DAY_MS), 500)
    assert "motor_stall" not in [e["event"] for e in client.log()]


@pytest.mark.pumpsim_needs("motor-stall")
def test_a_stroke_that_fails_three_attempts_is_a_motor_stall_at_that_stroke(infusing):
    bench, client, t0 = infusing
    bench.advance_days(1)
    pulses = bench.rig.measure()["pulses"]
    bench.rig.stall("next", MOTOR_ATTEMPTS)
    bench.advance_ms(STROKE_MS)
    assert bench.rig.measure()["pulses"] == pulses
    stall = alarm(client, "MOTOR_STALL")
    assert stall and stall["since_s"] == (t0 + DAY_MS + STROKE_MS) // 1000
    status = client.status()
    assert status["state"] == "alarm" and status["delivered_nl"] == bench.rig.measure()["delivered_nl"]
    # The motor turns again (the rig failed exactly three attempts): the retry 10 min later resumes.
    bench.advance_ms(10 * MIN_MS)
    assert alarm(client, "MOTOR_STALL") is None and client.status()["state"] == "infusing"
    assert bench.rig.measure()["pulses"] == pulses + 1


# -- reservoir alarms ------------------------------------------------------------------------------


def stroke_time_ms(t0, k, stroke_nl):
    """When the k-th stroke is due: the first ms at which the programme owes k strokes."""
    per_ms = continuous_volume_nl(500, CONC, 1)
    return t0 + math.ceil(Fraction(k * stroke_nl) / per_ms)


def crossing_stroke(threshold_nl, stroke_nl):
    """The first stroke that leaves the reservoir at or below threshold_nl."""
    return math.ceil(Fraction(FILL_UL * 1000 - threshold_nl, stroke_nl))


def test_reservoir_alarms_come_with_the_stroke_that_crosses_their_threshold(infusing):
    bench, client, t0 = infusing
    stroke_nl = bench.rig.measure()["stroke_nl"]
    # 20 mL at 250 µL a day in 500 nL strokes: the 36,000th leaves 2 mL (day 72), the 39,000th
    # 0.5 mL (day 78). Months of strokes: an accounting that drifts misses the stroke.
    for code, threshold_nl, state_after in (("LOW_RESERVOIR", LOW_RESERVOIR_NL, "infusing"),
                                            ("EMPTY_RESERVOIR", EMPTY_RESERVOIR_NL, "alarm")):
        crossing = crossing_stroke(threshold_nl, stroke_nl)
        at_ms = stroke_time_ms(t0, crossing, stroke_nl)
        bench.advance_ms(at_ms - 1 - now_ms(bench))
        assert bench.rig.measure()["pulses"] == crossing - 1
        assert alarm(client, code) is None, "%s before stroke %d" % (code, crossing)
        bench.advance_ms(1)
        assert bench.rig.measure()["pulses"] == crossing
        raised = alarm(client, code)
        assert raised, "no %s at stroke %d" % (code, crossing)
        assert raised["since_s"] == at_ms // 1000
        assert client.status()["state"] == state_after
        logged = [e for e in client.log() if e["event"] == "alarm" and e["code"] == code][-1]
        assert logged["active"] is True and logged["t_ms"] == at_ms
    assert (crossing_stroke(LOW_RESERVOIR_NL, stroke_nl), crossing) == (36_000, 39_000)

