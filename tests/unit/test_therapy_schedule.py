"""The stroke schedule in integers: exact stroke times, no drift over months, no catch-up bolus.

Expected times are worked out here with fractions from the dose, the concentration and the
stroke volume, never with the firmware's own formula."""

import ast
import math
from fractions import Fraction
from pathlib import Path

import pytest

from pump.core import Pump
from pump.eventlog import EventLog
from pump.store import Store

from .conftest import FIRMWARE
from .fakes import DAY_MS, CountingMotor, FakeClock, MemoryStore

STROKE_NL = 500


def make_pump(tmp_path, store=None, clock=None):
    clock = clock or FakeClock()
    motor = CountingMotor()
    pump = Pump(clock, motor, store or MemoryStore(), STROKE_NL, EventLog(str(tmp_path)))
    pump.boot()
    return pump, clock, motor


def run_until(pump, clock, motor, end_ms):
    """Sleep to each event the pump asks for, as the main loop does; the time of every stroke."""
    times = []
    while True:
        due_ms = pump.next_event_ms()
        if due_ms is None or due_ms > end_ms:
            break
        clock.now = max(clock.now, due_ms)
        before = motor.strokes
        pump.run_due(clock.now)
        times += [clock.now] * (motor.strokes - before)
    clock.now = end_ms
    before = motor.strokes
    pump.run_due(end_ms)
    times += [end_ms] * (motor.strokes - before)
    return times


def expected_times(start_ms, dose_ug_per_day, conc_ug_per_ml, count):
    """Stroke k is due once k strokes' volume has been owed: at ceil(k · stroke / rate)."""
    rate_nl_per_ms = Fraction(dose_ug_per_day * 1000 * 1000, conc_ug_per_ml) / DAY_MS
    return [start_ms + math.ceil(k * STROKE_NL / rate_nl_per_ms) for k in range(1, count + 1)]


def test_500_ug_a_day_at_2000_ug_per_ml_is_500_strokes_a_day_exactly(tmp_path):
    pump, clock, motor = make_pump(tmp_path)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    times = run_until(pump, clock, motor, 10 * DAY_MS)
    # 500 µg/day ÷ 2000 µg/mL = 0.25 mL/day = 500 strokes of 500 nL: one every 172.8 s.
    assert times == [k * 172_800 for k in range(1, 5001)]
    assert motor.strokes == pump.strokes == 5000
    assert [sum(1 for t in times if day * DAY_MS < t <= (day + 1) * DAY_MS) for day in range(10)] == [500] * 10


def test_no_drift_in_90_days(tmp_path):
    pump, clock, motor = make_pump(tmp_path)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    times = run_until(pump, clock, motor, 90 * DAY_MS)
    assert len(times) == 45_000 and times[-1] == 90 * DAY_MS
    assert pump.delivered_nl == 45_000 * STROKE_NL and pump.reservoir_nl == 40_000_000 - 22_500_000


@pytest.mark.parametrize("dose_ug, conc", [(333, 500), (7, 50), (1999, 1000), (2000, 2000)])
def test_uneven_intervals_are_rounded_up_per_stroke_never_accumulated(tmp_path, dose_ug, conc):
    pump, clock, motor = make_pump(tmp_path)
    pump.refill(40000, conc)
    start_ms = 12_345
    clock.now = start_ms
    pump.program_steps("continuous", [(0, dose_ug)])
    times = run_until(pump, clock, motor, start_ms + 3 * DAY_MS)
    assert times == expected_times(start_ms, dose_ug, conc, len(times))
    assert times == sorted(times)
    # Three days owe 3 · dose / conc mL: the pump has made every whole stroke of it.
    owed_nl = Fraction(3 * dose_ug * 1000 * 1000, conc)
    assert len(times) == owed_nl // STROKE_NL


def test_a_program_change_keeps_what_was_owed_under_the_old_one(tmp_path):
    pump, clock, motor = make_pump(tmp_path)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    clock.now = 100_000  # between stroke 0 and stroke 1 (due at 172 800)
    pump.run_due(clock.now)
    pump.program_steps("continuous", [(0, 1000)])
    # 100 s at 250 µL/day are owed already; the rest of the 500 nL comes at 500 µL/day.
    owed_nl = Fraction(250_000 * 100_000, DAY_MS)
    expected = 100_000 + math.ceil((STROKE_NL - owed_nl) * DAY_MS / 500_000)
    assert pump.next_event_ms() == expected
    times = run_until(pump, clock, motor, DAY_MS)
    assert times[0] == expected and times == sorted(times)


def test_after_a_reset_the_schedule_goes_on_from_now_without_catching_up(tmp_path):
    store = Store(str(tmp_path / "data"))
    pump, clock, motor = make_pump(tmp_path, store)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, motor, DAY_MS + 1000)
    assert motor.strokes == 500
    # Five days without power; then the pump boots from its records.
    clock.now = 6 * DAY_MS
    again, clock, motor = make_pump(tmp_path, Store(str(tmp_path / "data")), clock)
    assert again.strokes == 500 and again.state == "infusing"
    times = run_until(again, clock, motor, 7 * DAY_MS)
    assert len(times) in (500, 501)  # one day's worth, not six
    assert sum(1 for t in times if t < 6 * DAY_MS + 172_800) <= 1


def test_no_float_anywhere_in_the_firmware():
    for path in sorted(Path(FIRMWARE).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            assert not (isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div)), \
                "%s:%d true division" % (path.name, node.lineno)
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), \
                "%s:%d float literal" % (path.name, node.lineno)
            assert not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float"), \
                "%s:%d float()" % (path.name, node.lineno)


def test_every_count_stays_an_integer(tmp_path):
    pump, clock, motor = make_pump(tmp_path)
    pump.refill(40000, 1000)
    pump.program_steps("flex", [(0, 333), (600, 777), (1320, 50)])
    run_until(pump, clock, motor, 2 * DAY_MS + 7)
    for owner in (pump, pump.therapy):
        for name, value in vars(owner).items():
            assert not isinstance(value, float), name
