"""Every alarm change is in the event log, whatever made it (docs/protocol.md, "Event log":
`alarm` with `code`, `active`, `priority`), and the log's times never run backwards."""

from pump.core import Pump
from pump.eventlog import EventLog

from .fakes import DAY_MS, FakeClock, MemoryStore
from .test_stall_retries import StallingMotor, run_until

MIN_MS = 60_000


def pump_of(tmp_path):
    clock = FakeClock()
    motor = StallingMotor(clock)
    pump = Pump(clock, motor, MemoryStore(), 500, EventLog(str(tmp_path)))
    pump.boot()
    return pump, clock, motor


def alarm_changes(pump):
    return [(e["code"], e["active"]) for e in pump.log.read() if e["event"] == "alarm"]


def assert_in_time_order(pump):
    times = [e["t_ms"] for e in pump.log.read()]
    assert times == sorted(times)


def test_a_refill_logs_the_reminder_it_clears(tmp_path):
    pump, clock, _ = pump_of(tmp_path)
    pump.refill(20000, 2000, reminder_days=1)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, DAY_MS + MIN_MS)
    assert ("REFILL_REMINDER", True) in alarm_changes(pump)
    pump.refill(20000, 2000)
    assert alarm_changes(pump)[-1] == ("REFILL_REMINDER", False)
    assert_in_time_order(pump)


def test_a_stall_and_its_recovery_are_logged_as_alarms_too(tmp_path):
    pump, clock, motor = pump_of(tmp_path)
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, DAY_MS)
    motor.stalled = True
    run_until(pump, clock, DAY_MS + 15 * MIN_MS)
    motor.stalled = False
    run_until(pump, clock, DAY_MS + 40 * MIN_MS)
    events = [e["event"] if e["event"] != "alarm" else (e["code"], e["active"]) for e in pump.log.read()]
    stall = events.index("motor_stall")
    assert events[stall - 1] == ("MOTOR_STALL", True)
    recovered = events.index("motor_stall_recovered")
    assert events[recovered - 1] == ("MOTOR_STALL", False)
    assert_in_time_order(pump)
