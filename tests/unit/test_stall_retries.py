"""A stalled motor is tried again every 10 min of pump time, and therapy resumes at the first try
that turns it (docs/safety.md, "withdrawal: motor stalled")."""

from pump.core import Pump
from pump.eventlog import EventLog

from .fakes import DAY_MS, FakeClock, MemoryStore

MIN_MS = 60_000


class StallingMotor:
    """Turns unless stalled; remembers the pump time of every attempt."""

    def __init__(self, clock):
        self.clock = clock
        self.stalled = False
        self.attempts = []

    def stroke(self):
        self.attempts.append(self.clock.now)
        return not self.stalled


def run_until(pump, clock, end_ms):
    while True:
        due_ms = pump.next_event_ms()
        if due_ms is None or due_ms > end_ms:
            break
        clock.now = max(clock.now, due_ms)
        pump.run_due(clock.now)
    clock.now = end_ms
    pump.run_due(end_ms)


def test_a_stalled_motor_is_tried_every_10_minutes_until_it_turns(tmp_path):
    clock = FakeClock()
    motor = StallingMotor(clock)
    pump = Pump(clock, motor, MemoryStore(), 500, EventLog(str(tmp_path)))
    pump.boot()
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    run_until(pump, clock, DAY_MS)
    motor.stalled = True
    motor.attempts = []
    run_until(pump, clock, DAY_MS + 65 * MIN_MS)
    tried_at = sorted(set(motor.attempts))
    stalled_at = tried_at[0]
    assert tried_at == [stalled_at + k * 10 * MIN_MS for k in range(len(tried_at))]
    assert len(tried_at) >= 6 and "MOTOR_STALL" in pump.alarms.active
    motor.stalled = False
    run_until(pump, clock, tried_at[-1] + 10 * MIN_MS)
    assert "MOTOR_STALL" not in pump.alarms.active and pump.state == "infusing"
