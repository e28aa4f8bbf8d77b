"""Pump time against the records, in-process: a clock that cannot be restored (it reads what it
reads) and records saved later than it. Expected times come from the dose, the concentration and
the stroke volume, worked out here."""

from pump.core import Pump
from pump.eventlog import EventLog
from pump.store import Store

from .fakes import DAY_MS, CountingMotor, FakeClock

STROKE_NL = 500
STROKE_INTERVAL_MS = 172_800  # 500 nL of 500 µg/day at 2000 µg/mL: 250 µL a day


def make_pump(tmp_path, clock):
    data = str(tmp_path / "data")
    pump = Pump(clock, CountingMotor(), Store(data), STROKE_NL, EventLog(data))
    pump.boot()
    return pump


def run_until(pump, clock, end_ms):
    while True:
        due_ms = pump.next_event_ms()
        if due_ms is None or due_ms > end_ms:
            return
        clock.now = max(clock.now, due_ms)
        pump.run_due(clock.now)


def test_a_schedule_saved_later_than_the_clock_raises_clock_restored_and_therapy_goes_on(tmp_path):
    clock = FakeClock()
    pump = make_pump(tmp_path, clock)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, 10 * DAY_MS)
    assert "CLOCK_RESTORED" not in pump.alarms.active
    strokes = pump.strokes
    # The clock comes back nine days behind the records.
    clock.now = DAY_MS
    again = make_pump(tmp_path, clock)
    assert "CLOCK_RESTORED" in again.alarms.active and again.state == "infusing"
    assert again.strokes == strokes
    # The next stroke within one interval of the clock, not nine days later.
    assert DAY_MS <= again.therapy.next_stroke_ms() <= DAY_MS + STROKE_INTERVAL_MS
    run_until(again, clock, 2 * DAY_MS)
    assert again.strokes - strokes in (500, 501)
    boot = [e for e in again.log.read() if e["event"] == "boot"][-1]
    assert boot["clock"] == "restored"


def test_a_clock_at_or_after_the_records_is_believed(tmp_path):
    clock = FakeClock()
    pump = make_pump(tmp_path, clock)
    pump.refill(40000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, DAY_MS)
    again = make_pump(tmp_path, clock)
    assert "CLOCK_RESTORED" not in again.alarms.active
    assert again.newest_saved_ms() == clock.now
