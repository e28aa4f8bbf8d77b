"""Refills (withdrawn volume, concentration change, reminder) and the event log."""

import json
from fractions import Fraction

import pytest

from .helpers import run_cli

from pumpsim.hil.verify import DAY_MS, bolus_volume_nl, check_delivered, continuous_volume_nl

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

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


def test_the_cli_reports_and_the_log_keeps_a_flagged_discrepancy(running):
    # The limit itself is probed both ways in test_boundaries.py; here, what a clinician sees and
    # what stays on record, for 14.6 % more withdrawn than calculated (the pump under-delivered).
    bench, client = running
    calculated_nl = 20_000_000 - bench.rig.measure()["delivered_nl"]
    assert calculated_nl == 17_500_000  # 10 days at 250 µL a day
    withdrawn_ul = calculated_nl * Fraction("1.146") / 1000
    assert withdrawn_ul == 20_055
    reply = json.loads(pumpsim(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000",
                               "--withdrawn-ml", "20.055", "--json"))
    assert (reply["withdrawn_ul"], reply["discrepancy_pct"], reply["flagged"]) == (20_055, -14.6, True)
    assert reply["reservoir_ul"] == 20_000
    refill = [e for e in client.log() if e["event"] == "refill"][-1]
    assert (refill["withdrawn_ul"], refill["discrepancy_pct_x1000"], refill["flagged"]) == (20_055, -14_600, True)


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


def first_ms_owing(volume_nl, owed_nl, lo_ms, hi_ms):
    """The first ms in [lo, hi] at which owed_nl(t) reaches volume_nl (owed_nl never decreases)."""
    while lo_ms < hi_ms:
        mid = (lo_ms + hi_ms) // 2
        lo_ms, hi_ms = (lo_ms, mid) if owed_nl(mid) >= volume_nl else (mid + 1, hi_ms)
    return lo_ms


@pytest.mark.pumpsim_needs("power-cut")
def test_the_log_records_programming_refills_boluses_alarms_and_resets(bench):
    client = bench.client()
    t0 = bench.rig.time()["clock_ms"]
    client.refill(volume_ul=3_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    client.program_continuous(daily_dose_ug=600)
    client.bolus(dose_ug=20, minutes=30)
    bench.advance_days(9)
    bench.rig.power_cycle()
    bench.advance_days(0.1)
    events = json.loads(pumpsim(bench, "log", "--json"))
    assert all("t_s" in e and "event" in e for e in events)
    # The unfilled pump's first boot raised both reservoir alarms before it logged its boot: what
    # follows that boot is the filled pump's.
    first_boot = [e["event"] for e in events].index("boot")
    assert events[first_boot]["boots"] == 1
    after = events[first_boot + 1:]

    # 600 µg/day of 2000 µg/mL and 10 µL of bolus over the first 30 min, from the 3 mL fill: the
    # stroke that leaves 2 mL raises LOW_RESERVOIR, the one that leaves 0.5 mL EMPTY_RESERVOIR.
    def owed_nl(t_ms):
        return (continuous_volume_nl(600, 2000, t_ms - t0)
                + bolus_volume_nl(10_000, t0, 30 * 60_000, t0, t_ms))

    stroke_nl = bench.rig.measure()["stroke_nl"]
    low_ms = first_ms_owing(1_000_000 // stroke_nl * stroke_nl, owed_nl, t0, t0 + 9 * DAY_MS)
    empty_ms = first_ms_owing(2_500_000 // stroke_nl * stroke_nl, owed_nl, t0, t0 + 9 * DAY_MS)
    assert (low_ms - t0, empty_ms - t0) == (285_120_000, 717_120_000)  # day 3.3 and day 8.3
    reservoir = [(e["code"], e["active"], e["t_ms"]) for e in after
                 if e["event"] == "alarm" and e["code"] in ("LOW_RESERVOIR", "EMPTY_RESERVOIR")]
    assert set(reservoir[:2]) == {("LOW_RESERVOIR", False, t0), ("EMPTY_RESERVOIR", False, t0)}  # the fill
    assert reservoir[2:] == [("LOW_RESERVOIR", True, low_ms), ("EMPTY_RESERVOIR", True, empty_ms)]

    refill = [e for e in after if e["event"] == "refill"]
    assert [(e["volume_ul"], e["t_ms"]) for e in refill] == [(3_000, t0)]
    program = [(e["old"], e["new"]) for e in after if e["event"] == "program"]
    assert program[-1] == ("continuous 500 ug/day", "continuous 600 ug/day")
    boluses = [(e["event"], e["t_ms"]) for e in after if e["event"].startswith("bolus_")]
    assert boluses == [("bolus_start", t0), ("bolus_end", t0 + 30 * 60_000)]
    boots = [e for e in after if e["event"] == "boot"]
    assert [(b["cause"], b["boots"], b["t_ms"]) for b in boots] == [("power-on", 2, t0 + 9 * DAY_MS)]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert [e["t_ms"] for e in events] == sorted(e["t_ms"] for e in events)
