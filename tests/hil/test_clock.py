"""Pump time across resets, with the RTC of a Pico: after every power-up and reset it reads
2021-01-01 plus uptime (`rig rtc volatile`). Pump time must never run backwards, therapy must not
wait for the clock, and the pump must say that its clock was restored. Expected values come from
the rig (what flowed, its time) and from the harness's own arithmetic, never from the firmware's
report of itself; the pump's status is what is under test."""

import json
import random

import pytest

from pumpsim.errors import Refused
from pumpsim.hil.verify import DAY_MS, check_delivered, continuous_volume_nl, daily_profile_volume_nl

from .helpers import run_cli

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

STEPS = [(0, 600), (8 * 60, 450), (20 * 60, 600)]
HOUR_MS = 3_600_000
CLOCK_MAX_MS = 100 * 365 * DAY_MS  # docs/protocol.md: set-clock takes up to 100 years


def js(bench, *args):
    return json.loads(run_cli(bench, *args, "--json").stdout)


def codes(status):
    return {a["code"]: a for a in status["alarms"]}


def log_times_never_go_back(events):
    times = [e["t_ms"] for e in sorted(events, key=lambda e: e["seq"])]
    assert times == sorted(times), "event-log times went backwards"


def assert_restored(status):
    assert status["clock_source"] == "restored"
    alarm = codes(status).get("CLOCK_RESTORED")
    assert alarm and alarm["priority"] == "medium" and alarm["pattern"] == "single"
    assert status["state"] == "infusing"


@pytest.mark.pumpsim_needs("power-cut", "volatile-rtc")
def test_50_power_cuts_with_a_volatile_rtc_never_turn_pump_time_back(bench):
    rng = random.Random(20260301)
    client = bench.client()
    client.refill(volume_ul=40_000, concentration_ug_per_ml=2000)
    client.program_flex(STEPS)
    bench.advance_days(1)
    # A kept RTC (the virtual board's default) is believed: no alarm.
    bench.rig.power_cycle()
    status = client.status()
    assert status["clock_source"] == "rtc" and "CLOCK_RESTORED" not in codes(status)
    assert status["clock_ms"] == bench.rig.time()["clock_ms"]

    assert bench.rig.rtc("volatile")["rtc"] == "volatile"
    start = bench.rig.measure()
    shown_ms = status["clock_ms"]
    for cut in range(50):
        bench.advance_ms(rng.randint(1, 400_000))
        before = client.status()
        assert before["clock_ms"] >= shown_ms, (cut, before["clock_ms"], shown_ms)
        shown_ms = before["clock_ms"]
        bench.rig.power_cycle()
        after = client.status()
        rig = bench.rig.measure()
        # Stepped time does not move while the board boots: pump time comes back to the last time
        # a status showed, not to the RTC's 2021-01-01.
        assert shown_ms <= after["clock_ms"] <= rig["clock_ms"], (cut, shown_ms, after["clock_ms"])
        shown_ms = after["clock_ms"]
        assert_restored(after)
        # Therapy does not pause: the rig counts the programme, within one stroke.
        check_delivered(rig["delivered_nl"] - start["delivered_nl"],
                        daily_profile_volume_nl(STEPS, 2000, start["clock_ms"], rig["clock_ms"]),
                        rig["stroke_nl"], "after cut %d" % cut)
    assert bench.rig.measure()["power_cuts"] == 51
    events = client.log()
    log_times_never_go_back(events)
    boots = [e for e in events if e["event"] == "boot"]
    assert len(boots) >= 50 and all(e.get("clock") == "restored" for e in boots[-50:])

    # The clinician sets the clock: the alarm clears, and therapy goes on as programmed.
    now_ms = bench.rig.time()["clock_ms"]
    client.nonce = None  # a reset ended the session
    status = client.set_clock(now_ms)
    assert status["clock_source"] == "set" and "CLOCK_RESTORED" not in codes(status)
    assert status["clock_ms"] == now_ms
    assert client.log()[-1]["event"] == "clock_set"
    before = bench.rig.measure()
    bench.advance_days(1)
    after = bench.rig.measure()
    check_delivered(after["delivered_nl"] - before["delivered_nl"],
                    daily_profile_volume_nl(STEPS, 2000, before["clock_ms"], after["clock_ms"]),
                    2 * after["stroke_nl"], "the day after set-clock")
    assert "CLOCK_RESTORED" not in codes(client.status())


@pytest.mark.pumpsim_needs("power-cut", "power-cut-mid-write", "volatile-rtc")
def test_power_cuts_at_any_moment_lose_at_most_one_stroke_interval_each(bench):
    """Cuts at random moments, a third in the middle of a flash write, no status before them:
    pump time goes on from the newest saved time, at most one stroke interval behind the moment
    of the cut (a stroke's record holds its clock)."""
    rng = random.Random(20260302)
    cuts = 20
    client = bench.client()
    client.refill(volume_ul=40_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    bench.rig.rtc("volatile")
    start = bench.rig.measure()
    stroke_interval_ms = DAY_MS * start["stroke_nl"] // int(continuous_volume_nl(500, 2000, DAY_MS))
    shown_ms = client.status()["clock_ms"]
    lag_ms = bench.rig.time()["clock_ms"] - shown_ms
    for cut in range(cuts):
        power_cuts = bench.rig.measure()["power_cuts"]
        if cut % 3 == 0:
            bench.rig.power_cycle(at_write=rng.randint(1, 3))
            while bench.rig.measure()["power_cuts"] == power_cuts:
                bench.advance_ms(rng.randint(50_000, 200_000))
        else:
            bench.advance_ms(rng.randint(1, 400_000))
            bench.rig.power_cycle()
        status = client.status()
        rig = bench.rig.measure()
        assert status["clock_ms"] >= shown_ms, (cut, status["clock_ms"], shown_ms)
        assert status["clock_ms"] <= rig["clock_ms"]
        # Pump time runs with the rig's between cuts; at a cut it falls behind by the time since
        # the newest save, at most one stroke interval (each stroke's record holds its clock).
        grew_ms = rig["clock_ms"] - status["clock_ms"] - lag_ms
        assert 0 <= grew_ms <= stroke_interval_ms, (cut, grew_ms)
        lag_ms += grew_ms
        shown_ms = status["clock_ms"]
        assert_restored(status)
    final = bench.rig.measure()
    programmed_nl = continuous_volume_nl(500, 2000, final["clock_ms"] - start["clock_ms"])
    delivered_nl = final["delivered_nl"] - start["delivered_nl"]
    # Each cut loses at most the time since the newest save, one stroke interval: one stroke.
    assert programmed_nl - (cuts + 1) * final["stroke_nl"] <= delivered_nl <= programmed_nl + final["stroke_nl"]
    lost_ms = final["clock_ms"] - client.status()["clock_ms"]
    assert 0 <= lost_ms <= cuts * stroke_interval_ms
    log_times_never_go_back(client.log())


@pytest.fixture
def restored(bench):
    """A pump infusing, then a power cut with a volatile RTC: its clock restored."""
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    bench.rig.rtc("volatile")
    bench.advance_ms(100_000)
    bench.rig.power_cycle()
    bench.advance_ms(HOUR_MS)
    status = client.status()
    assert_restored(status)
    client.nonce = None  # a reset ended the session
    return bench, client, status


@pytest.mark.pumpsim_needs("power-cut", "volatile-rtc")
def test_set_clock_is_refused_one_ms_before_the_newest_saved_time_and_accepted_at_it(restored):
    bench, client, status = restored
    newest_ms = status["clock_ms"]  # a status saves the time it shows: the newest saved time
    log_length = len(client.log())

    def unchanged():
        again = client.status()
        assert again["clock_ms"] == newest_ms and again["clock_source"] == "restored"
        assert "CLOCK_RESTORED" in codes(again) and len(client.log()) == log_length

    for payload, code, limit in (
            ({"clock_ms": newest_ms - 1}, "E_LIMIT", "saved_clock_ms"),
            ({"clock_ms": 0}, "E_LIMIT", "saved_clock_ms"),
            ({"clock_ms": CLOCK_MAX_MS + 1}, "E_LIMIT", "clock_ms"),
            ({"clock_ms": -1}, "E_ARG", None),
            ({"clock_ms": newest_ms + 0.5}, "E_ARG", None),
            ({"clock_ms": str(newest_ms)}, "E_ARG", None),
            ({}, "E_ARG", None),
            ({"clock_ms": newest_ms, "confirm": True}, "E_ARG", None)):
        with pytest.raises(Refused) as refused:
            client.request("set-clock", payload)
        assert refused.value.code == code and refused.value.limit == limit, payload
        unchanged()
    pulses = bench.rig.measure()["pulses"]
    status = client.set_clock(newest_ms)
    assert status["clock_ms"] == newest_ms and status["clock_source"] == "set"
    assert "CLOCK_RESTORED" not in codes(status)
    event = client.log()[-1]
    assert event["event"] == "clock_set" and event["new_ms"] == newest_ms
    assert event["cleared"] == "CLOCK_RESTORED"
    assert event["t_ms"] == newest_ms and bench.rig.measure()["pulses"] == pulses


@pytest.mark.pumpsim_needs("power-cut", "volatile-rtc")
def test_set_clock_forward_owes_nothing_for_the_jump_and_never_goes_back(restored):
    bench, client, status = restored
    rig = bench.rig.measure()
    assert status["clock_ms"] < rig["clock_ms"]  # the hour since the cut and the 100 s before it
    status = client.set_clock(rig["clock_ms"] + 30 * DAY_MS)
    assert status["clock_ms"] == rig["clock_ms"] + 30 * DAY_MS
    # No catch-up bolus for the month jumped, no pause: the programme, within one stroke.
    assert bench.rig.measure()["pulses"] == rig["pulses"]
    bench.advance_days(1)
    after = bench.rig.measure()
    check_delivered(after["delivered_nl"] - rig["delivered_nl"],
                    continuous_volume_nl(500, 2000, after["clock_ms"] - rig["clock_ms"]),
                    after["stroke_nl"], "the day after a month's jump")
    status = client.status()
    assert status["clock_ms"] == after["clock_ms"] + 30 * DAY_MS
    with pytest.raises(Refused) as refused:
        client.set_clock(rig["clock_ms"])  # back before what it saved since
    assert refused.value.code == "E_LIMIT" and refused.value.limit == "saved_clock_ms"
    # A cut with the volatile RTC: restored again, since the power-off time is unknown again.
    bench.rig.power_cycle()
    again = client.status()
    assert again["clock_ms"] >= status["clock_ms"]
    assert_restored(again)
    log_times_never_go_back(client.log())


@pytest.mark.pumpsim_needs("power-cut", "volatile-rtc")
def test_a_kept_rtc_carries_a_set_clock_across_a_power_cut(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    assert bench.rig.rtc()["rtc"] == "kept"
    rig = bench.rig.measure()
    client.set_clock(rig["clock_ms"] + HOUR_MS)
    bench.advance_ms(HOUR_MS)
    bench.rig.power_cycle()
    status = client.status()
    now_ms = bench.rig.time()["clock_ms"]
    assert status["clock_ms"] == now_ms + HOUR_MS and status["clock_source"] == "set"
    assert "CLOCK_RESTORED" not in codes(status)
    bench.advance_days(1)
    after = bench.rig.measure()
    check_delivered(after["delivered_nl"] - rig["delivered_nl"],
                    continuous_volume_nl(500, 2000, after["clock_ms"] - rig["clock_ms"]),
                    after["stroke_nl"], "a day and an hour with a set clock")


@pytest.mark.pumpsim_needs("power-cut", "volatile-rtc")
def test_the_cli_sets_the_clock_by_day_and_time_and_refuses_bad_input(restored):
    bench, client, status = restored
    day, rest_ms = divmod(status["clock_ms"], DAY_MS)
    for args, words in ((["--clock-ms", "-5"], "--clock-ms"), (["--day", "1.5"], "--day"),
                        (["--day", str(day), "--time", "25:00"], "--time"),
                        (["--clock-ms", "5", "--day", "1"], "--clock-ms MS or --day"), ([], "--clock-ms MS or --day"),
                        (["--clock-ms", "5", "--time", "10:00"], "--time goes with --day")):
        result = run_cli(bench, "set-clock", *args, ok=False)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
    refused = run_cli(bench, "set-clock", "--day", str(day), ok=False)  # day D 00:00: before it
    assert refused.returncode == 1 and "saved_clock_ms" in refused.stderr
    assert client.status()["clock_source"] == "restored"
    target_ms = (day + 1) * DAY_MS + (10 * 3600 + 30 * 60 + 15) * 1000
    reply = js(bench, "set-clock", "--day", str(day + 1), "--time", "10:30:15")
    assert reply["clock_ms"] == target_ms and reply["clock_source"] == "set"
    assert "day %d 10:30:15 (set)" % (day + 1) in run_cli(bench, "status").stdout
    assert js(bench, "rig", "rtc")["rtc"] == "volatile"
    assert js(bench, "rig", "rtc", "kept")["rtc"] == "kept"
    assert run_cli(bench, "rig", "rtc", "lost", ok=False).returncode == 2
    with pytest.raises(Exception, match="kept or volatile"):
        bench.rig.request("rtc lost")
