"""The hazards a review found, each closed and proven over the serial line. Expected values come
from the rig (what flowed, what sounded) and from the harness's own arithmetic (pumpsim.hil.verify),
never from the firmware's report of itself."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

import pumpsim.firmware
from pumpsim.errors import LinkTimeout, Refused
from pumpsim.hil.verify import (DAY_MS, check_delivered, continuous_volume_nl, daily_profile_volume_nl,
                                drug_ug)

from .helpers import board_file, put_files, run_cli

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

MIN_MS = 60_000
HOUR_MS = 3_600_000
THERAPY = ("mode", "daily_dose_ug", "concentration_ug_per_ml", "steps", "boluses", "reservoir_nl",
           "catheter_ul", "tubing_ul", "bridge_remaining_ul", "alarms", "state")


def js(bench, *args):
    return json.loads(run_cli(bench, *args, "--json").stdout)


def therapy(client):
    status = client.status()
    return {k: status[k] for k in THERAPY}


def codes(client):
    return {a["code"]: a for a in client.status()["alarms"]}


@pytest.fixture
def running(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    return bench, client


# -- 1. priming fills dead volume only --------------------------------------------------------


def test_priming_is_refused_while_the_catheter_volume_is_unset(running):
    bench, client = running
    before, pulses = therapy(client), bench.rig.measure()["pulses"]
    assert before["catheter_ul"] is None  # unset until measured: no default is safe
    refused = run_cli(bench, "bolus", "--prime-ul", "100", "--minutes", "10", ok=False)
    assert refused.returncode == 1 and "catheter_ul" in refused.stderr and "--catheter-ul" in refused.stderr
    assert therapy(client) == before and bench.rig.measure()["pulses"] == pulses


def test_priming_up_to_the_dead_volume_and_not_one_microlitre_more(running):
    bench, client = running
    client.config(catheter_ul=100)  # with 150 µL of tubing: 250 µL of dead volume
    before = therapy(client)
    with pytest.raises(Refused) as refused:
        client.bolus_prime(volume_ul=251, minutes=30)
    assert refused.value.code == "E_LIMIT" and refused.value.limit == "prime_volume_ul"
    assert therapy(client) == before
    start_ms, start = bench.rig.time()["clock_ms"], bench.rig.measure()
    reply = js(bench, "bolus", "--prime-ul", "250", "--minutes", "30")
    # 250 µL of 2000 µg/mL: 500 µg could reach the patient, and the reply says so.
    assert reply["bolus"]["patient_ug"] == 250 * 2000 // 1000
    bench.advance_ms(HOUR_MS)
    end = bench.rig.measure()
    check_delivered(end["delivered_nl"] - start["delivered_nl"],
                    continuous_volume_nl(500, 2000, end["clock_ms"] - start_ms) + 250_000, end["stroke_nl"])


# -- 2. the catheter volume sizes the bridge ----------------------------------------------------


def test_a_concentration_change_is_refused_until_the_catheter_volume_is_set(running):
    bench, client = running
    bench.advance_days(1)
    before = therapy(client)
    refused = run_cli(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "1000", ok=False)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "--catheter-ul" in refused.stderr
    assert therapy(client) == before
    client = bench.client()  # the CLI's session replaced ours
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)  # the same drug needs no bridge
    client.config(catheter_ul=0)
    assert client.refill(volume_ul=20_000, concentration_ug_per_ml=1000)["bridge_ul"] == 150


def test_the_first_fill_of_a_new_pump_needs_no_catheter_volume(bench):
    client = bench.client()
    assert client.refill(volume_ul=20_000, concentration_ug_per_ml=500)["concentration_ug_per_ml"] == 500


def test_a_bolus_during_the_bridge_gives_its_dose_at_the_drug_actually_flowing(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=500)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    client.config(catheter_ul=0)
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)  # 150 µL of 500 µg/mL first
    since = bench.rig.measure()
    client.bolus(dose_ug=100, minutes=60)
    bench.advance_ms(HOUR_MS)
    hour = bench.rig.measure()
    flowed_nl = hour["delivered_nl"] - since["delivered_nl"]
    got_ug = drug_ug(0, flowed_nl, 150_000, 500, 2000)
    # The profile's 500 µg/day for an hour and the bolus's 100 µg: within a stroke of new drug.
    expected_ug = Fraction(500, 24) + 100
    stroke_ug = Fraction(hour["stroke_nl"] * 2000, 1_000_000)
    assert abs(got_ug - expected_ug) <= 2 * stroke_ug, (float(got_ug), float(expected_ug))


# -- 3. withdrawal is never a slip of the keyboard ---------------------------------------------


@pytest.mark.parametrize("mode", ["stop", "minimum-rate"])
def test_stopping_or_dropping_to_the_minimum_rate_needs_confirmation(running, mode):
    bench, client = running
    before = therapy(client)
    refused = run_cli(bench, "program", mode, ok=False)
    assert refused.returncode != 0 and "withdrawal" in refused.stderr
    # The pump refuses on its own as well, whatever the programmer.
    call = client.program_stop if mode == "stop" else client.program_minimum_rate
    with pytest.raises(Refused) as firmware:
        call()
    assert firmware.value.code == "E_CONFIRM" and "withdrawal" in firmware.value.reason
    assert therapy(client) == before
    assert js(bench, "program", mode, "--confirm")["mode"] == mode


@pytest.mark.pumpsim_needs("battery", "power-cut", "tones")
def test_a_low_battery_reset_sounds_high_priority_until_reprogrammed(running):
    bench, client = running
    bench.advance_days(1)
    bench.rig.battery(2740)
    bench.rig.power_cycle()
    t0 = bench.rig.time()["clock_ms"]
    client = bench.client()
    alarm = codes(client)["LOW_BATTERY_RESET"]
    assert alarm["priority"] == "high" and alarm["pattern"] == "two-tone"
    assert client.status()["state"] == "infusing" and client.status()["mode"] == "minimum-rate"
    start = bench.rig.measure()
    bench.advance_ms(HOUR_MS + MIN_MS)
    two_tone = [t["t_ms"] - t0 for t in bench.rig.tones() if t["t_ms"] >= t0 and t["pattern"] == "two-tone"]
    assert two_tone == [0, 600_000, 1_200_000, 1_800_000, 2_400_000, 3_000_000, 3_600_000]
    # The minimum rate, 6 µL a day, goes on beneath the alarm.
    end = bench.rig.measure()
    check_delivered(end["delivered_nl"] - start["delivered_nl"],
                    Fraction(6_000 * (end["clock_ms"] - start["clock_ms"]), DAY_MS), end["stroke_nl"])
    client.program_continuous(daily_dose_ug=500)
    assert "LOW_BATTERY_RESET" not in codes(client)


@pytest.mark.pumpsim_needs("tones")
def test_a_stopped_pump_is_never_silent(running):
    bench, client = running
    bench.advance_ms(HOUR_MS)  # the empty pump's alarms at boot have long finished sounding
    client.program_stop(confirm=True)
    t0 = bench.rig.time()["clock_ms"]
    alarm = codes(client)["THERAPY_STOPPED"]
    assert alarm["priority"] == "medium" and alarm["pattern"] == "single"
    bench.advance_ms(2 * HOUR_MS + MIN_MS)
    single = [t["t_ms"] - t0 for t in bench.rig.tones() if t["t_ms"] >= t0 and t["pattern"] == "single"]
    assert single == [0, HOUR_MS, 2 * HOUR_MS]
    client.program_continuous(daily_dose_ug=500)
    assert "THERAPY_STOPPED" not in codes(client)
    t1 = bench.rig.time()["clock_ms"]
    bench.advance_ms(2 * HOUR_MS)
    assert [t for t in bench.rig.tones() if t["t_ms"] > t1] == []


# -- 4. the refill reminder comes before the pump runs low ----------------------------------------


def days_to(volume_nl, per_day_nl):
    return Fraction(volume_nl) / per_day_nl


def test_the_reminder_is_a_week_before_the_projected_low_reservoir(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    status = client.program_continuous(daily_dose_ug=500)
    per_day = continuous_volume_nl(500, 2000, DAY_MS)  # 250 µL a day
    low_day = days_to(20_000_000 - 2_000_000, per_day)
    empty_day = days_to(20_000_000 - 500_000, per_day)
    assert (low_day, empty_day) == (72, 78)
    assert abs(Fraction(status["projected_low_reservoir_s"], 86400) - low_day) <= Fraction(1, 10)
    assert abs(Fraction(status["projected_empty_s"], 86400) - empty_day) <= Fraction(1, 10)
    assert abs(Fraction(status["refill_reminder_s"], 86400) - (low_day - 7)) <= Fraction(1, 10)
    bench.advance_days(64.9)
    assert "REFILL_REMINDER" not in codes(client)
    bench.advance_days(0.2)
    assert "REFILL_REMINDER" in codes(client) and "LOW_RESERVOIR" not in codes(client)


def test_the_reminder_counts_flex_steps_the_patients_maximum_and_the_lead(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    steps = [(0, 600), (7 * 60, 500), (20 * 60, 600)]
    client.program_flex(steps)
    client.program_patient_bolus(dose_ug=20, lockout_minutes=120, max_per_day=4)
    status = client.config(reminder_lead_days=14)
    per_day = daily_profile_volume_nl(steps, 2000, 0, DAY_MS) + continuous_volume_nl(4 * 20, 2000, DAY_MS)
    low_day = days_to(18_000_000, per_day)
    assert abs(Fraction(status["projected_low_reservoir_s"], 86400) - low_day) <= Fraction(1, 10)
    assert abs(Fraction(status["refill_reminder_s"], 86400) - (low_day - 14)) <= Fraction(1, 10)
    stopped = client.program_stop(confirm=True)
    assert stopped["projected_low_reservoir_s"] is None and stopped["projected_empty_s"] is None
    assert stopped["refill_reminder_s"] == 84 * 86400  # only the elective interval is left


# -- 5. every motor pulse is a row of the state table ---------------------------------------------


@pytest.mark.pumpsim_needs("battery", "motor-stall")
def test_the_rig_counts_no_pulse_in_the_states_that_forbid_one(bench):
    client = bench.client()
    pulses = bench.rig.measure()["pulses"]
    bench.advance_days(2)  # never filled, never programmed: an empty pump's alarm
    assert bench.rig.measure()["pulses"] == pulses and client.status()["state"] == "alarm"

    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    client.program_stop(confirm=True)
    pulses = bench.rig.measure()["pulses"]
    bench.advance_days(2)  # stopped by the clinician
    assert bench.rig.measure()["pulses"] == pulses and client.status()["state"] == "stopped"

    client.program_continuous(daily_dose_ug=500)
    bench.rig.stall("on")
    bench.advance_ms(HOUR_MS)
    assert "MOTOR_STALL" in codes(client)
    bench.rig.battery(2650)  # end of service as well: no stalled-motor retry may pulse now
    bench.advance_ms(HOUR_MS + MIN_MS)
    assert {"MOTOR_STALL", "BATTERY_EOS"} <= set(codes(client)) and client.status()["state"] == "alarm"
    bench.rig.stall("off")  # a pulse would turn the motor now, and the rig would count it
    pulses = bench.rig.measure()["pulses"]
    bench.advance_ms(2 * HOUR_MS)
    assert bench.rig.measure()["pulses"] == pulses

    bench.rig.battery(3200)  # a new battery: the stalled motor's retry is the one pulse allowed
    bench.advance_ms(HOUR_MS + 11 * MIN_MS)
    assert "MOTOR_STALL" not in codes(client) and client.status()["state"] == "infusing"
    assert bench.rig.measure()["pulses"] > pulses


def test_an_empty_pump_moves_no_drug(bench):
    client = bench.client()
    client.refill(volume_ul=600, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)  # 100 µL to the empty threshold: 200 strokes
    assert bench.rig.measure()["pulses"] == 200 and client.status()["state"] == "alarm"
    bench.advance_days(3)
    assert bench.rig.measure()["pulses"] == 200


# -- 6. a crash resets the board instead of stopping therapy -----------------------------------


# A test-only module on the test's own flash: boot.py runs before main.py on every board and
# plants the fault; nothing of it is part of the firmware.
FAULTS = '''
import os
import pump.app as _app

def _armed(name):
    try:
        os.remove(name)  # one shot: the board that comes back runs normally
        return True
    except OSError:
        return False

_status = _app.App.status
def status(self, args=None):
    if args and args.get("crash") and _armed("crash.verb"):
        {}["no such key"]
    return _status(self, args)
_app.App.status = status

_sound = _app.App.sound
def sound(self, now_ms):
    if now_ms >= 2 * 86400000 and _armed("crash.loop"):
        1 // 0
    return _sound(self, now_ms)
_app.App.sound = sound
'''


@pytest.mark.parametrize("where", ["verb", "loop"])
@pytest.mark.pumpsim_needs("power-cut")
def test_an_unexpected_error_is_logged_and_resets_and_therapy_resumes(bench, where):
    boot_py = (Path(pumpsim.firmware.__file__).parent / "boot.py").read_text()
    put_files(bench, {"boot.py": boot_py + FAULTS, "crash." + where: "armed"})
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    start = bench.rig.measure()
    bench.advance_days(1)
    if where == "verb":
        with pytest.raises(LinkTimeout):
            bench.client(timeout=3).request("status", {"crash": True})
    bench.advance_days(2)
    end = bench.rig.measure()
    assert end["boots"] == start["boots"] + 1
    fault = [e for e in client.log() if e["event"] == "firmware_fault"]
    assert [(e["type"], e["where"].split()[-1]) for e in fault] == [
        ("KeyError", "status") if where == "verb" else ("ZeroDivisionError", "sound")]
    boot = [e for e in client.log() if e["event"] == "boot"][-1]
    # Logged by the reason the firmware wrote before it reset, not as the chip's hard reset.
    assert boot["cause"] == "firmware_fault" and boot["state"] == "infusing"
    assert boot["reset_at_ms"] == fault[0]["t_ms"]
    # Three days of 500 µg/day, at most one stroke lost to the reset.
    expected = continuous_volume_nl(500, 2000, end["clock_ms"] - start["clock_ms"])
    lost_nl = expected - (end["delivered_nl"] - start["delivered_nl"])
    assert -end["stroke_nl"] <= lost_nl <= 2 * end["stroke_nl"]
    assert bench.client().status()["state"] == "infusing"
    assert board_file(bench, "crash." + where) is None  # the fault was one shot


# -- 7. settings within their ranges -----------------------------------------------------------

RANGES = [  # (protocol name, lowest, highest)
    ("empty_reservoir_ul", 500, 2000),
    ("low_reservoir_ul", 1000, 10000),
    ("discrepancy_limit_permille", 50, 250),
    ("catheter_ul", 0, 500),
    ("tubing_ul", 0, 200),
    ("reminder_lead_days", 0, 28),
]


def _consistent(name, value):
    # The empty threshold must stay below the low one: move the other out of the way.
    if name == "empty_reservoir_ul":
        return {"low_reservoir_ul": 10_000, name: value}
    if name == "low_reservoir_ul":
        return {"empty_reservoir_ul": 500, name: value}
    return {name: value}


@pytest.mark.parametrize("name, low, high", RANGES)
def test_every_setting_is_refused_one_step_outside_its_range(running, name, low, high):
    bench, client = running
    for value in (low, high):
        assert client.config(**_consistent(name, value))[name] == value
    before = therapy(client)
    for value in (low - 1, high + 1):
        if value < 0:
            continue  # a negative number is no setting at all (E_ARG)
        with pytest.raises(Refused) as refused:
            client.config(**_consistent(name, value))
        assert refused.value.code == "E_LIMIT" and refused.value.limit == name
        assert "%d to %d" % (low, high) in refused.value.reason
        assert therapy(client) == before


def test_the_cli_refuses_a_5_ml_catheter_and_a_40_percent_discrepancy_limit(running):
    bench, client = running
    for args in (("--catheter-ul", "5000"), ("--discrepancy-limit-pct", "40")):
        refused = run_cli(bench, "config", *args, ok=False)
        assert refused.returncode == 1 and "outside its range" in refused.stderr
    status = client.status()
    assert status["catheter_ul"] is None


def test_a_refill_after_the_reminder_fell_due_clears_it_and_plans_the_next(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(66)
    assert "REFILL_REMINDER" in codes(client)
    t_s = bench.rig.time()["clock_ms"] // 1000
    reply = client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    assert "REFILL_REMINDER" not in codes(client)
    # Full again: a week before this fill runs low, 72 days on.
    assert abs(Fraction(reply["refill_reminder_s"] - t_s, 86400) - 65) <= Fraction(1, 10)


def test_a_reminder_due_before_pump_time_zero_sounds_at_once(bench):
    client = bench.client()
    client.refill(volume_ul=3_000, concentration_ug_per_ml=2000)
    status = client.program_continuous(daily_dose_ug=500)
    # 1 mL above the low threshold is 4 days: the reminder, a week earlier, is already due.
    assert abs(Fraction(status["refill_reminder_s"], 86400) - (4 - 7)) <= Fraction(1, 10)
    assert "REFILL_REMINDER" in codes(client)


@pytest.mark.pumpsim_needs("corrupt-flash", "power-cut")
def test_a_change_survives_its_newest_copy_going_bad(bench):
    # The older copy of the records holds what came before the last change: booting from it
    # would give back the old drug, a quarter of the dose volume here.
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    client.config(catheter_ul=100)
    client.refill(volume_ul=30_000, concentration_ug_per_ml=500)
    bench.rig.corrupt_flash("state")
    bench.rig.power_cycle()
    status = bench.client().status()
    assert (status["concentration_ug_per_ml"], status["reservoir_nl"], status["bridge_remaining_ul"]) == (
        500, 30_000_000, 250)
    assert "MEMORY_REPAIRED" in codes(bench.client())


@pytest.mark.pumpsim_needs("motor-stall", "power-cut")
def test_a_stalled_motor_is_tried_again_after_a_reset(running):
    bench, client = running
    bench.rig.stall("on")
    bench.advance_ms(HOUR_MS)
    assert "MOTOR_STALL" in codes(client)
    bench.rig.power_cycle()  # the retry schedule lived in RAM only
    client = bench.client()
    bench.rig.stall("off")
    pulses = bench.rig.measure()["pulses"]
    bench.advance_ms(11 * MIN_MS)
    assert "MOTOR_STALL" not in codes(client) and client.status()["state"] == "infusing"
    assert bench.rig.measure()["pulses"] > pulses
