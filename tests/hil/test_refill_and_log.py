"""Refills (withdrawn volume, concentration change, reminder) and the event log."""

import json
from fractions import Fraction

import pytest

from .helpers import run_cli

from pumpsim.hil.verify import check_delivered, continuous_volume_nl

pytestmark = pytest.mark.stepped

HOUR_MS = 3_600_000


def pumpsim(bench, *args):
    return run_cli(bench, *args).stdout


@pytest.fixture
def running(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(10)
    return bench, client


def test_withdrawn_volume_20_percent_short_is_flagged(running):
    bench, client = running
    calculated_ul = Fraction(client.status()["reservoir_nl"], 1000)
    assert calculated_ul == 17_500
    withdrawn_ml = str(calculated_ul * 8 / 10 / 1000)  # 20 % below: 14 mL
    reply = json.loads(pumpsim(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000",
                               "--withdrawn-ml", withdrawn_ml, "--json"))
    assert abs(reply["discrepancy_pct"] - 20) < 0.01
    assert reply["flagged"] is True
    assert reply["reservoir_ul"] == 20_000
    refill = [e for e in client.log() if e["event"] == "refill"][-1]
    assert refill["flagged"] is True and refill["withdrawn_ul"] == 14_000


def test_a_small_discrepancy_is_not_flagged(running):
    bench, client = running
    reply = client.refill(volume_ul=20_000, concentration_ug_per_ml=2000, withdrawn_ul=17_000)
    assert abs(reply["discrepancy_pct"] - Fraction(500 * 100, 17_500)) < 0.01
    assert reply["flagged"] is False


def test_a_concentration_change_pushes_the_old_drug_through_first(running):
    bench, client = running
    client.config(tubing_ul=150, catheter_ul=50)
    reply = client.refill(volume_ul=20_000, concentration_ug_per_ml=1000)
    assert reply["bridge_ul"] == 200
    start = bench.rig.measure()

    def expected_nl(t_ms):
        # 200 µL of the old 2000 µg/mL drug at its rate (250 µL/day: 0.8 day), then 1000 µg/mL.
        bridge_ms = Fraction(200_000, continuous_volume_nl(500, 2000, 1)) if t_ms else 0
        if t_ms <= bridge_ms:
            return continuous_volume_nl(500, 2000, t_ms)
        return 200_000 + Fraction(continuous_volume_nl(500, 1000, 1)) * (t_ms - bridge_ms)

    for hour in range(1, 49):
        bench.advance_ms(HOUR_MS)
        now = bench.rig.measure()
        check_delivered(now["delivered_nl"] - start["delivered_nl"], expected_nl(hour * HOUR_MS),
                        now["stroke_nl"], "hour %d after the refill" % hour)
    assert client.status()["bridge_remaining_ul"] == 0


def test_refill_clears_reservoir_alarms_and_sets_a_reminder(bench):
    client = bench.client()
    client.refill(volume_ul=2_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    assert "LOW_RESERVOIR" in {a["code"] for a in client.status()["alarms"]}
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000, reminder_days=1)
    assert client.status()["alarms"] == []
    bench.advance_days(0.9)
    assert client.status()["alarms"] == []
    bench.advance_days(0.2)
    reminder = [a for a in client.status()["alarms"] if a["code"] == "REFILL_REMINDER"]
    assert reminder and reminder[0]["priority"] == "medium"


def test_the_log_records_programming_refills_boluses_alarms_and_resets(bench):
    client = bench.client()
    client.refill(volume_ul=3_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    client.program_continuous(daily_dose_ug=600)
    client.bolus(dose_ug=20, minutes=30)
    bench.advance_days(5)
    bench.rig.power_cycle()
    bench.advance_days(0.1)
    events = json.loads(pumpsim(bench, "log", "--json"))
    assert all("t_s" in e and "event" in e for e in events)
    kinds = [e["event"] for e in events]
    for kind in ("boot", "refill", "program", "bolus_start", "bolus_end", "alarm"):
        assert kind in kinds, kind
    program = [e for e in events if e["event"] == "program"]
    assert program[-1]["old"] == "continuous 500 ug/day" and program[-1]["new"] == "continuous 600 ug/day"
    alarms = [(e["code"], e["active"]) for e in events if e["event"] == "alarm"]
    assert ("LOW_RESERVOIR", True) in alarms and ("EMPTY_RESERVOIR", True) in alarms
    boots = [e for e in events if e["event"] == "boot"]
    assert boots[-1]["cause"] == "power-on" and boots[-1]["boots"] >= 2
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert [e["t_ms"] for e in events] == sorted(e["t_ms"] for e in events)
