"""The CLI contract, command by command, against a virtual board: names, options and JSON fields."""

import json
import math
from fractions import Fraction

import pytest

from .helpers import run_cli

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")


pumpsim = run_cli


def js(bench, *args):
    return json.loads(pumpsim(bench, *args, "--json").stdout)


def test_the_contract_end_to_end(bench):
    status = js(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000")
    assert status["reservoir_ul"] == 20_000
    status = js(bench, "program", "continuous", "--daily-dose-ug", "500")
    for field in ("state", "mode", "reservoir_ul", "delivered_ul", "daily_dose_ug",
                  "concentration_ug_per_ml", "clock_s", "alarms"):
        assert field in status, field
    assert status["state"] == "infusing" and status["daily_dose_ug"] == 500

    t0 = js(bench, "rig", "time")["clock_ms"]
    assert js(bench, "rig", "advance", "1d")["clock_ms"] == t0 + 86_400_000
    measured = js(bench, "rig", "measure")
    assert measured["pulses"] == 500 and measured["delivered_ul"] == 250.0

    status = js(bench, "program", "flex", "--step", "00:00=500", "--step", "22:00=600")
    assert status["mode"] == "flex" and status["steps"] == ["00:00=500", "22:00=600"]
    status = js(bench, "program", "flex", "--step", "00:00=500", "--step", "sun/10:00=450")
    assert status["week"] == {"6": ["10:00=450"]}
    assert js(bench, "program", "minimum-rate", "--confirm")["mode"] == "minimum-rate"
    stopped = pumpsim(bench, "program", "stop", "--confirm", "--json")
    assert json.loads(stopped.stdout)["state"] == "stopped"
    assert "WARNING" in stopped.stderr and "abrupt" in stopped.stderr

    js(bench, "program", "continuous", "--daily-dose-ug", "500")
    bolus = js(bench, "bolus", "--dose-ug", "50", "--minutes", "60")
    assert bolus["bolus"]["volume_ul"] == 25.0
    patient = js(bench, "program", "patient-bolus", "--dose-ug", "10", "--lockout-minutes", "60",
                 "--max-per-day", "2")
    assert patient["patient_bolus"] == {"dose_ug": 10, "lockout_minutes": 60, "max_per_day": 2}
    assert js(bench, "bolus", "--patient")["bolus"]["kind"] == "patient"
    refused = pumpsim(bench, "bolus", "--patient", ok=False)
    assert refused.returncode == 1 and "locked out" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # No time passed since the day's 500 strokes: the pump should hold 19.75 mL, and 19.7 mL drawn
    # out is 0.253 % less (floored to the reply's 3 decimals): well within the limit.
    calculated_ul = Fraction(20_000_000 - js(bench, "rig", "measure")["delivered_nl"], 1000)
    assert calculated_ul == 19_750
    refill = js(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000",
                "--withdrawn-ml", "19.7")
    expected_pct = Fraction(math.floor((calculated_ul - 19_700) / calculated_ul * 100_000), 1000)
    assert Fraction(str(refill["discrepancy_pct"])) == expected_pct == Fraction("0.253")
    assert refill["flagged"] is False and refill["withdrawn_ul"] == 19_700

    events = js(bench, "log")
    assert isinstance(events, list) and all("t_s" in e and "event" in e for e in events)

    armed = js(bench, "rig", "power-cycle", "--at-write", "1")
    assert armed["at_write"] == 1
    js(bench, "rig", "advance", "1h")
    assert js(bench, "rig", "measure")["power_cuts"] == 1
    assert js(bench, "status")["state"] == "infusing"
    assert "power cycled" in pumpsim(bench, "rig", "power-cycle").stdout


@pytest.mark.parametrize("args, words", [
    (["program", "flex", "--step", "25:00=500"], "HH:MM"),
    (["program", "flex", "--step", "sat/10:00=500"], "every day"),
    (["program", "flex", "--step", "xyz/10:00=500"], "HH:MM"),
    (["program", "flex"] + sum([["--step", "%02d:00=100" % h] for h in range(14)], []), "13"),
    (["bolus", "--minutes", "10"], "one of"),
    (["bolus", "--dose-ug", "10"], "--minutes"),
    (["rig", "power-cycle", "--at-write", "0"], "--at-write"),
    (["refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000", "--withdrawn-ml", "-1"],
     "withdrawn"),
])
def test_bad_input_to_the_new_commands(bench, args, words):
    result = pumpsim(bench, *args, ok=False)
    assert result.returncode == 2 and words in result.stderr


def test_the_fault_and_alarm_commands(bench):
    js(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000")
    js(bench, "program", "continuous", "--daily-dose-ug", "500")
    status = js(bench, "status")
    # A fresh virtual battery (3.2 V at pump time 0), read through the ADC (floored, under 1 mV
    # off), and the board's thresholds.
    assert js(bench, "rig", "battery")["battery_mv"] == 3200
    assert 3199 <= round(status["battery_volts"] * 1000) <= 3200
    assert (status["eri_volts"], status["eos_volts"]) == (2.85, 2.7)

    assert js(bench, "rig", "battery", "--volts", "2.8")["battery_mv"] == 2800
    js(bench, "rig", "advance", "61m")
    alarms = js(bench, "alarms")
    assert [a["code"] for a in alarms] == ["BATTERY_ERI"] and alarms[0]["priority"] == "medium"
    acked = js(bench, "alarms", "ack", "BATTERY_ERI")
    assert acked[0]["acked"] is True
    tones = js(bench, "rig", "tones")
    assert tones and {"t_s", "pattern"} <= set(tones[0]) and tones[-1]["pattern"] == "single"

    assert js(bench, "rig", "fault", "motor-stall", "on")["stall"] == "on"
    js(bench, "rig", "advance", "5m")
    assert "MOTOR_STALL" in [a["code"] for a in js(bench, "alarms")]
    js(bench, "rig", "fault", "motor-stall", "off")
    js(bench, "rig", "advance", "11m")
    assert "MOTOR_STALL" not in [a["code"] for a in js(bench, "alarms")]

    assert js(bench, "rig", "corrupt-flash")["corrupted"]
    assert js(bench, "rig", "hang")["hung"] is True
    js(bench, "rig", "advance", "1m")
    last = js(bench, "log")[-1]
    # The watchdog's reset, and at that boot the copy corrupted just before, repaired.
    assert (last["event"], last["cause"], last["memory"]) == ("boot", "watchdog", "repaired")
    assert js(bench, "status")["reset_cause"] == "watchdog"
    assert "playing" in pumpsim(bench, "alarms", "test").stdout


@pytest.mark.parametrize("args, words", [
    (["alarms", "ack", "NOT_AN_ALARM"], "unknown alarm code"),
    (["alarms", "ack", "MOTOR_STALL"], "not an active alarm"),
    (["rig", "fault", "motor-stall", "sometimes"], "invalid choice"),
    (["rig", "fault", "motor-stall", "next"], "needs N"),
    (["rig", "fault", "motor-stall", "next", "0"], "above 0"),
    (["rig", "fault", "motor-stall", "next", "1.5"], "whole number"),
    (["rig", "fault", "motor-stall", "on", "2"], "only motor-stall next"),
    (["rig", "battery", "--volts", "abc"], "voltage"),
    (["rig", "battery", "--volts", "9"], "voltage"),
    (["rig", "corrupt-flash", "--target", "everything"], "invalid choice"),
])
def test_bad_input_to_the_fault_commands(bench, args, words):
    result = pumpsim(bench, *args, ok=False)
    assert result.returncode in (1, 2) and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
