"""The real-time subset: tests that need no stepped clock, so they pass on every target, the
virtual board (`--pumpsim-target emu`, time stepped as they wait) and official MicroPython on an
emulated RP2040 (`--pumpsim-target rp2040js`, time waited for). Expected volumes come from harness
code and the rig's clock; delivered volumes from the rig's count.

A fast test rate keeps them short: 1200 µg/day of 50 µg/mL is 24 mL/day, about one stroke a
second of 250 nL on a Pico (two seconds of 500 nL on the virtual board).
"""

import random
import time

import pytest
import serial

from pumpsim import __version__
from pumpsim.errors import Refused
from pumpsim.hil.fuzz import fuzzed_line
from pumpsim.hil.verify import check_delivered, continuous_volume_nl

DAILY_DOSE_UG = 1200
CONCENTRATION_UG_PER_ML = 50
MIN_MS = 60_000
CLOCK_CUTS = 50

pytestmark = pytest.mark.timeout(900)


def infusing(bench, fill_ul=20_000):
    client = bench.client()
    client.refill(volume_ul=fill_ul, concentration_ug_per_ml=CONCENTRATION_UG_PER_ML)
    start = bench.rig.measure()
    client.program_continuous(daily_dose_ug=DAILY_DOSE_UG)
    return client, start


def strokes_reach(bench, count):
    def reached():
        measured = bench.rig.measure()
        return measured if measured["pulses"] >= count else None
    return reached


def boot_count(bench):
    """The board's boots as its rig counts them; a rig that cannot see a boot (a rig Pico, which
    only sees the DUT's pins) leaves it to the boot events of the pump's own log."""
    if "boot-count" in bench.raw_rig.hello()["can"]:
        return bench.rig.measure()["boots"]
    return len(boots_in_log(bench))


def alarm_codes(client):
    return {a["code"] for a in client.status()["alarms"]}


def test_the_deployed_firmware_is_this_version_for_the_rigs_board(bench):
    status = bench.client(key=False).status()  # status needs no key
    assert status["fw"] == __version__
    board = bench.raw_rig.hello()["board"]
    assert status["board"] == board
    assert status["stroke_nl"] == bench.rig.measure()["stroke_nl"]


def test_a_request_signed_with_another_key_is_refused_and_changes_nothing(bench):
    from pumpsim.client import PumpClient

    status = bench.client().status()
    assert status["state"] in ("idle", "stopped", "infusing", "alarm")
    impostor = PumpClient.open(bench.port, key=bytes(32), timeout=bench.client_timeout_s)
    try:
        with pytest.raises(Refused) as refused:
            impostor.program_continuous(daily_dose_ug=DAILY_DOSE_UG)
    finally:
        impostor.close()
    assert refused.value.code == "E_AUTH"
    after = bench.client().status()
    assert after["mode"] == status["mode"] and after["auth_failures"] == status["auth_failures"] + 1
    assert bench.rig.measure()["pulses"] == 0


def test_continuous_delivery_is_what_the_rig_counts_over_100_strokes(bench):
    # Timed by the rig's own stamp of each stroke (last_pulse_ms), so neither the programme's
    # round trip nor the moment the harness looks moves the window: 100 strokes take the time
    # the programme gives 100 strokes, within one.
    client, start = infusing(bench)
    first = bench.wait_until(strokes_reach(bench, start["pulses"] + 1), 5 * MIN_MS, "the first stroke")
    end = bench.wait_until(strokes_reach(bench, first["pulses"] + 100), 30 * MIN_MS, "100 strokes")
    stroke_nl = end["stroke_nl"]
    expected_nl = continuous_volume_nl(DAILY_DOSE_UG, CONCENTRATION_UG_PER_ML, end["last_pulse_ms"] - first["last_pulse_ms"])
    check_delivered(end["delivered_nl"] - first["delivered_nl"], expected_nl, stroke_nl)
    # The first stroke came within a stroke's time of the programme.
    expected_nl = continuous_volume_nl(DAILY_DOSE_UG, CONCENTRATION_UG_PER_ML, first["last_pulse_ms"] - start["clock_ms"])
    check_delivered(first["delivered_nl"] - start["delivered_nl"], expected_nl, stroke_nl, "the first stroke")
    assert client.status()["state"] == "infusing"


def test_the_low_reservoir_alarm_comes_with_a_small_fill(bench):
    client = bench.client()
    low_ul = client.status()["low_reservoir_ul"]
    stroke_nl = bench.rig.measure()["stroke_nl"]
    # Eight strokes above the threshold: the alarm rises at the stroke that crosses it.
    client, start = infusing(bench, fill_ul=int(low_ul) + 8 * stroke_nl // 1000)
    assert "LOW_RESERVOIR" not in alarm_codes(client)
    bench.wait_until(lambda: "LOW_RESERVOIR" in alarm_codes(client), 10 * MIN_MS, "LOW_RESERVOIR")
    crossed = bench.rig.measure()["pulses"] - start["pulses"]
    assert 8 <= crossed <= 9  # the crossing stroke, and perhaps one under way when we looked
    assert client.status()["state"] == "infusing"  # low is a warning: therapy goes on


@pytest.mark.pumpsim_needs("power-cut")
def test_a_power_cut_mid_therapy_resumes_it(bench):
    client, start = infusing(bench)
    before = bench.wait_until(strokes_reach(bench, start["pulses"] + 5), 10 * MIN_MS, "5 strokes")
    cut_ms = bench.rig.measure()["clock_ms"]
    bench.rig.power_cycle()
    bench.wait_for_pump()
    back_ms = bench.rig.measure()["clock_ms"]
    status = bench.client().status()
    assert status["state"] == "infusing" and status["daily_dose_ug"] == DAILY_DOSE_UG
    after = bench.wait_until(strokes_reach(bench, before["pulses"] + 10), 10 * MIN_MS, "10 strokes after the cut")
    # Nothing made twice across the cut, and nothing lost while the pump had power: the rig's
    # count is the programme's, less at most what falls in the outage (from the cut until the
    # pump answered again, as the rig timed it: a physical cut lasts a while, and a pump boots).
    delivered_nl = after["delivered_nl"] - start["delivered_nl"]
    whole_ms = after["clock_ms"] - start["clock_ms"]
    expected_nl = continuous_volume_nl(DAILY_DOSE_UG, CONCENTRATION_UG_PER_ML, whole_ms)
    powered_nl = continuous_volume_nl(DAILY_DOSE_UG, CONCENTRATION_UG_PER_ML, whole_ms - (back_ms - cut_ms))
    assert delivered_nl <= expected_nl + 2 * after["stroke_nl"], (delivered_nl, expected_nl)
    assert delivered_nl >= powered_nl - 2 * after["stroke_nl"], (delivered_nl, powered_nl)


@pytest.mark.pumpsim_needs("power-cut-mid-write")
def test_power_cuts_in_the_middle_of_record_writes_lose_no_stroke(bench):
    # Each cut lands inside the next write of the records (on a Pico, to the FRAM, seen on its
    # SPI pins): a torn stroke record is never taken for a stroke that was made, nor the reverse.
    client, start = infusing(bench)
    bench.wait_until(strokes_reach(bench, start["pulses"] + 2), 10 * MIN_MS, "2 strokes")
    for cut in range(5):
        cuts = bench.rig.measure()["power_cuts"]
        bench.rig.power_cycle(at_write=1)

        def cut_now():
            measured = bench.rig.measure()
            return measured if measured["power_cuts"] > cuts else None
        bench.wait_until(cut_now, 5 * MIN_MS, "cut %d in a write" % cut)
        bench.wait_for_pump()
    client = bench.client()
    rig = bench.rig.measure()
    status = client.status()
    later = bench.rig.measure()
    # Never behind the rig's count, and at most the stroke under way ahead of it.
    assert rig["delivered_nl"] <= status["delivered_nl"] <= later["delivered_nl"] + rig["stroke_nl"]
    assert status["state"] == "infusing"
    after = bench.wait_until(strokes_reach(bench, rig["pulses"] + 5), 10 * MIN_MS, "5 strokes after the cuts")
    assert after["power_cuts"] == start["power_cuts"] + 5


@pytest.mark.pumpsim_needs("motor-stall")
def test_a_motor_stall_on_the_feedback_line_stops_counting_and_alarms(bench):
    client, start = infusing(bench)
    bench.wait_until(strokes_reach(bench, start["pulses"] + 2), 10 * MIN_MS, "2 strokes")
    bench.rig.stall("on")
    stalled = bench.rig.measure()
    bench.wait_until(lambda: "MOTOR_STALL" in alarm_codes(client), 5 * MIN_MS, "MOTOR_STALL")
    assert client.status()["state"] == "alarm"
    bench.wait_ms(30_000)
    assert bench.rig.measure()["pulses"] - stalled["pulses"] <= 1  # at most the stroke under way
    alarm = [a for a in client.status()["alarms"] if a["code"] == "MOTOR_STALL"][0]
    assert alarm["priority"] == "high" and alarm["pattern"] == "two-tone"


@pytest.mark.pumpsim_needs("battery", "reset")
def test_battery_eri_through_the_adc(bench):
    client = bench.client()
    assert "BATTERY_ERI" not in alarm_codes(client)
    eri_mv = round(client.status()["eri_volts"] * 1000)
    bench.rig.battery(eri_mv - 20)
    # The pump reads its battery at boot and hourly: a reset makes it read now.
    bench.rig.reset()
    bench.wait_for_pump()
    status = bench.client().status()
    assert abs(status["battery_volts"] * 1000 - (eri_mv - 20)) <= 5
    assert "BATTERY_ERI" in {a["code"] for a in status["alarms"]}


@pytest.mark.pumpsim_needs("tones")
def test_the_alarm_test_plays_both_patterns_on_the_buzzer_line(bench):
    client = bench.client()
    # Silence first: what sounds at boot is acknowledged, and any sound under way has ended.
    for alarm in client.status()["alarms"]:
        client.ack(alarm["code"])
    bench.wait_ms(5_000)
    t0 = bench.rig.measure()["clock_ms"]
    assert [t for t in bench.rig.tones() if t["t_ms"] + t["duration_ms"] > t0] == []
    client.alarm_test()

    def both():
        heard = {t["pattern"] for t in bench.rig.tones() if t["t_ms"] >= t0}
        return heard >= {"single", "two-tone"}
    bench.wait_until(both, 5 * MIN_MS, "both tone patterns on the buzzer line")


def test_fuzzed_frames_change_nothing_and_the_pump_goes_on(bench):
    client, start = infusing(bench)
    keep = ("mode", "daily_dose_ug", "concentration_ug_per_ml", "low_reservoir_ul", "empty_reservoir_ul")
    before = {k: client.status()[k] for k in keep}
    boots = boot_count(bench)
    rng = random.Random(8)
    line = serial.serial_for_url(bench.port, timeout=0.05)
    try:
        for _ in range(10):
            line.write(b"".join(fuzzed_line(rng) for _ in range(20)))
            line.read(1 << 16)
        deadline, quiet = time.monotonic() + 120, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet < 2.0:
            if line.read(1 << 16):
                quiet = time.monotonic()
    finally:
        line.close()
    client = bench.client()
    assert {k: client.status()[k] for k in keep} == before
    assert boot_count(bench) == boots  # no crash, no reset
    end = bench.wait_until(strokes_reach(bench, bench.rig.measure()["pulses"] + 3), 10 * MIN_MS,
                           "strokes after the fuzzing")
    expected_nl = continuous_volume_nl(DAILY_DOSE_UG, CONCENTRATION_UG_PER_ML, end["clock_ms"] - start["clock_ms"])
    check_delivered(end["delivered_nl"] - start["delivered_nl"], expected_nl, end["stroke_nl"])


def mpremote(bench, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "mpremote", "connect", bench.port, *args],
                          capture_output=True, text=True, timeout=120)


def boots_in_log(bench):
    return [e for e in bench.client().log() if e["event"] == "boot"]


def test_maintenance_gives_mpremote_the_line_and_a_reset_brings_therapy_back(bench):
    client, start = infusing(bench)
    bench.wait_until(strokes_reach(bench, start["pulses"] + 3), 10 * MIN_MS, "3 strokes")
    assert client.maintenance()["repl"] is True
    client.close()
    listing = mpremote(bench, "fs", "ls")
    assert listing.returncode == 0, listing.stderr
    assert "main.py" in listing.stdout and "pump/" in listing.stdout
    held = bench.rig.measure()
    bench.wait_ms(10_000)
    assert bench.rig.measure()["pulses"] == held["pulses"]  # no stroke while in maintenance
    assert mpremote(bench, "reset").returncode == 0
    bench.wait_for_pump()
    assert bench.client().status()["state"] == "infusing"
    bench.wait_until(strokes_reach(bench, held["pulses"] + 3), 10 * MIN_MS, "strokes after maintenance")
    assert boots_in_log(bench)[-1]["cause"] == "maintenance_end"


@pytest.mark.pumpsim_needs("boot-count")
def test_the_watchdog_resets_a_board_whose_feeder_stopped(bench):
    """In maintenance a timer feeds the watchdog, which nothing stops; stop the timer, and the
    watchdog resets the board into its therapy."""
    client, start = infusing(bench)
    assert client.maintenance()["repl"] is True
    client.close()
    stopped = mpremote(bench, "exec", "from pump import hal\nhal.stop_feeding()\nprint(hal._feeder)")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "None", stopped.stderr
    boots = bench.rig.measure()["boots"]  # (mpremote's soft reset was a boot too)
    bench.wait_until(lambda: bench.rig.measure()["boots"] > boots, 60_000, "a watchdog reset")
    bench.wait_for_pump()
    assert bench.client().status()["state"] == "infusing"


@pytest.mark.pumpsim_needs("power-cut")
def test_pump_time_never_goes_back_across_power_cuts(bench):
    client, start = infusing(bench)
    last_ms = client.status()["clock_ms"]
    rng = random.Random(50)
    for _ in range(CLOCK_CUTS):
        bench.wait_ms(rng.randint(200, 3_000))
        bench.rig.power_cycle()
        bench.wait_for_pump()
        status = bench.client().status()
        assert status["clock_ms"] >= last_ms, (status["clock_ms"], last_ms)
        if status["clock_source"] == "restored":  # an RTC that restarted at power-up: said so
            assert "CLOCK_RESTORED" in {a["code"] for a in status["alarms"]}
        last_ms = status["clock_ms"]
    times = [e["t_ms"] for e in bench.client().log()]
    assert times == sorted(times)  # the log never goes back either
    # Therapy resumes at once: it never waits out the board's uptime before the cut.
    end = bench.wait_until(strokes_reach(bench, bench.rig.measure()["pulses"] + 3), 2 * MIN_MS,
                           "strokes after the cuts")
    assert end["pulses"] > start["pulses"]
