"""The rig firmware's logic (firmware/rig/core.py), its hardware faked: on CPython and on the
MicroPython unix port it runs on, the same replies; each rule probed at its limit and one past."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pumpsim.targets.emu.supervisor import find_micropython

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "firmware", Path(__file__).parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import scenario  # noqa: E402

from rig.core import Motor, Strokes, Tones, ToneMeter  # noqa: E402


@pytest.fixture(scope="module")
def replies():
    return [json.loads(r) for r in scenario.run()[0]]


def by_request(replies):
    requests = [r for r in scenario.REQUESTS if not r.startswith("@")]
    return dict(zip(requests, replies[: len(requests)]))


def test_the_same_on_the_micropython_unix_port():
    script = "import sys\nsys.path[:0] = [%r, %r]\nimport json, scenario\nprint(json.dumps(scenario.run()))\n" % (
        str(ROOT / "firmware"), str(Path(__file__).parent))
    ran = subprocess.run([find_micropython(), "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    on_micropython = json.loads(ran.stdout)
    replies, log = scenario.run()
    assert [json.loads(r) for r in on_micropython[0]] == [json.loads(r) for r in replies]
    assert [tuple(x) for x in on_micropython[1]] == log


def test_hello_names_the_rig_and_only_what_hardware_can_do(replies):
    hello = by_request(replies)["hello"]
    assert hello == {"rig": "rig_pico", "proto": 1, "clock": "realtime", "board": "rpi_pico",
                     "can": ["reset", "power-cut", "motor-stall", "battery", "tones"]}


def test_stall_rules_are_the_emulated_rigs(replies):
    r = by_request(replies)
    # intermittent: every other attempt turns (the 2nd and 4th of 4)
    assert r["stall intermittent"] == {"stall": "intermittent"}
    measures = [x for x in replies if "pulses" in x]
    assert [m["pulses"] for m in measures[:4]] == [0, 2, 3, 4]
    assert [m["step_edges"] for m in measures[:4]] == [0, 4, 7, 8]
    # next 2: exactly the next two fail, then the motor turns again
    assert r["stall next 2"] == {"stall": "next", "fail_next": 2}
    assert measures[2]["last_failed_ms"] < measures[2]["last_pulse_ms"]
    assert r["stall next 0"]["error"].startswith("stall next takes")
    assert r["stall next"]["error"].startswith("stall next takes")
    assert "on, off, intermittent or next N" in r["stall sideways"]["error"]


def test_motor_next_n_fails_exactly_n():
    for n in (1, 2, 5):
        motor = Motor()
        motor.set("next", n)
        assert [motor.outcome() for _ in range(n + 2)] == [False] * n + [True, True]


def test_edges_that_wrap_the_counter_and_bursts_are_counted():
    strokes = Strokes(Motor())
    strokes.counted(0xFFFFFFFE, 1)
    strokes.counted(1, 2)  # three edges across the wrap
    assert strokes.edges == 0xFFFFFFFE + 3 and strokes.pulses == strokes.edges
    assert strokes.repeated == 0xFFFFFFFE - 1 + 2


def test_the_battery_starts_at_a_fresh_cell_not_at_0_v(replies):
    # Before any request the DAC already makes 3200 mV (nominal scale: 3200/3300 of full duty).
    assert by_request(replies)["battery"] == {"battery_mv": 3200, "duty": round(3200 * 65535 / 3300)}
    _, log = scenario.run()
    assert log[0] == ("dac", round(3200 * 65535 / 3300))


def test_battery_limits_at_and_past_each_end(replies):
    r = by_request(replies)
    assert r["battery 3300"]["battery_mv"] == 3300  # nominal full scale, uncalibrated
    assert r["battery 3301"]["error"] == "battery 3301 mV: this rig's DAC makes 1 to 3300 mV as calibrated"
    assert "error" in r["battery 0"]
    assert r["battery duty 65536"]["error"] == "battery duty takes 0 to 65535, not 65536"
    assert r["battery duty 32768"] == {"duty": 32768, "battery_mv": 1650}
    cal = r["battery calibrate 10000 500 60000 3100"]
    assert cal["calibrated"] == [10000, 500, 60000, 3100]
    low, high = cal["range_mv"]
    assert r["battery 500"]["duty"] == 10000 and r["battery 3100"]["duty"] == 60000
    assert r["battery 2850"]["duty"] == 10000 + round((2850 - 500) * 50000 / 2600)
    assert "error" not in r["battery 3200"] and high >= 3200  # within the DAC's calibrated range
    assert "error" not in r["battery 499"] and low < 499
    assert "error" in r["battery calibrate 5 100 5 200"] and "error" in r["battery calibrate x 1 2 3"]


def test_what_hardware_cannot_do_is_refused_with_a_reason(replies):
    r = by_request(replies)
    for request in ("power-cycle 1", "advance 1000", "clock stepped", "hang", "corrupt-flash state", "rtc volatile"):
        assert "error" in r[request] and len(r[request]["error"]) > 40, request
    assert r["clock realtime"]["clock"] == "realtime"
    assert r["power-cycle"]["power"] == "cycled" and r["reset"]["reset"] == "hard"
    log = scenario.run()[1]
    cut = log.index(("power", 0))
    assert log[cut:cut + 3] == [("power", 0), ("sleep", 200), ("power", 1)]
    reset = log.index(("run", 0))
    assert log[reset:reset + 3] == [("run", 0), ("sleep", 10), ("run", 1)]


def test_bad_requests_get_an_error_and_change_nothing(replies):
    r = by_request(replies)
    assert r["frobnicate"]["error"].startswith("unknown rig request 'frobnicate'")
    assert "unknown rig request ''" in r[""]["error"]
    too_long, not_text = replies[-2], replies[-1]
    assert "too long" in too_long["error"] and "ASCII" in not_text["error"]
    last = [x for x in replies if "pulses" in x][-1]
    assert last["delivered_ul"] == last["delivered_nl"] / 1000 == 1.0  # 4 strokes of 250 nL
    assert last["power_cuts"] == 1 and last["resets"] == 1 and last["step_edges"] == 8


def test_tones_are_heard_as_the_emulated_rigs_list_them(replies):
    (sound,) = replies[-3]["tones"]
    assert sound["pattern"] == "two-tone" and sound["freqs"] == [1000, 1500]
    # onset and end within a gate (20 ms) each of what was played
    played_ms = 300 + 40 + 200
    assert abs(sound["duration_ms"] - played_ms) <= 40


def test_a_tone_meter_needs_two_gates_to_agree():
    tones = Tones()
    meter = ToneMeter(tones, 20)
    meter.gate(20, 20)  # one gate at 1000 Hz: not yet a tone
    assert meter.hz == 0
    meter.gate(40, 21)  # 1050 Hz: a different reading, still not
    assert meter.hz == 0
    meter.gate(60, 21)
    assert meter.hz == 1050 and tones._on == (20, 1050)  # from the first gate that read it


def test_intermittent_fails_the_first_attempt_then_every_other():
    motor = Motor()
    motor.set("intermittent")
    assert [motor.outcome() for _ in range(5)] == [False, True, False, True, False]
    on = Motor()
    on.set("on")
    assert not any(on.outcome() for _ in range(3))


def test_a_new_fault_applies_from_the_very_next_edge(replies):
    measures = [x for x in replies if "pulses" in x]
    # intermittent from the edge after the request: 4 edges, fail-turn-fail-turn, the last turned
    assert measures[1]["last_pulse_ms"] > measures[1]["last_failed_ms"]
    assert measures[1]["last_pulse_ms"] - measures[1]["last_failed_ms"] == 100  # one edge apart


def test_the_counter_is_polled_every_millisecond_only_while_attempts_are_decided_anew():
    from rig.core import Rig

    rig = Rig(scenario.FakeHardware(), scenario.FakeClock(), 3300, 250)
    assert rig.poll_every_ms(20) == 20  # no stall: every attempt turns
    rig.handle(b"stall on")
    assert rig.poll_every_ms(20) == 20  # a stall that stays: every attempt fails
    rig.handle(b"stall intermittent")
    assert rig.poll_every_ms(20) == 1
    rig.handle(b"stall next 1")
    assert rig.poll_every_ms(20) == 1
    rig.hw.raw += 1  # the failing attempt, counted: the motor turns again from the next
    rig.poll()
    assert rig.poll_every_ms(20) == 20


def test_measure_counts_the_edges_up_to_the_request_itself():
    from rig.core import Rig

    hw = scenario.FakeHardware()
    rig = Rig(hw, scenario.FakeClock(), 3300, 250)
    hw.raw += 3  # edges the loop has not polled yet
    assert json.loads(rig.handle(b"measure"))["pulses"] == 3



def test_a_late_gate_neither_ends_a_tone_nor_makes_one_up():
    # 2000 Hz for 400 ms: gates of 20 ms, but one of 100 ms (the loop answered a slow request),
    # after which the gates go on from there, not five at once to catch up.
    tones = Tones()
    meter = ToneMeter(tones, 20)
    t = 0
    for span in [20] * 8 + [100] + [20] * 7:
        t += span
        meter.gate(t, 2000 * span // 1000)
    for _ in range(5):
        t += 20
        meter.gate(t, 0)
    listing = tones.listing()
    assert [(s["freqs"], s["pattern"]) for s in listing] == [([2000], "single")], listing
    assert abs(listing[0]["duration_ms"] - 400) <= 40 and listing[0]["t_ms"] <= 20
