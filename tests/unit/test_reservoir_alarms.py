"""Reservoir alarms from the calculated volume: LOW (medium) goes on pumping, EMPTY (high) stops."""

from pump import alarms
from pump.core import Pump
from pump.eventlog import EventLog

from .fakes import DAY_MS, CountingMotor, FakeClock, MemoryStore
from .test_therapy_schedule import run_until

STROKE_MS = 172_800  # 500 nL at 250 µL/day (500 µg/day at 2000 µg/mL)


def filled(tmp_path, volume_ul=20000):
    clock, motor = FakeClock(), CountingMotor()
    pump = Pump(clock, motor, MemoryStore(), 500, EventLog(str(tmp_path)))
    pump.boot()
    pump.refill(volume_ul, 2000)
    pump.program_steps("continuous", [(0, 500)])
    return pump, clock, motor


def raised(pump):
    return [(code, at_ms) for code, active, at_ms in pump.alarms.events if active]


def test_20_ml_runs_low_at_day_72_and_empty_at_day_78(tmp_path):
    pump, clock, motor = filled(tmp_path)
    run_until(pump, clock, motor, 72 * DAY_MS - 1)
    assert motor.strokes == 35_999 and "LOW_RESERVOIR" not in pump.alarms.active
    run_until(pump, clock, motor, 90 * DAY_MS)
    # 20 000 µL − 36 000 × 0.5 µL = 2000 µL: LOW; − 39 000 × 0.5 µL = 500 µL: EMPTY.
    assert pump.alarms.active["LOW_RESERVOIR"] == 36_000 * STROKE_MS == 72 * DAY_MS
    assert pump.alarms.active["EMPTY_RESERVOIR"] == 39_000 * STROKE_MS == 78 * DAY_MS
    assert motor.strokes == pump.strokes == 39_000
    assert pump.reservoir_nl == 500_000 and pump.state == "alarm"
    priorities = {a["code"]: a["priority"] for a in pump.alarms.listing()}
    assert priorities["LOW_RESERVOIR"] == "medium" and priorities["EMPTY_RESERVOIR"] == "high"


def test_low_reservoir_does_not_stop_therapy(tmp_path):
    pump, clock, motor = filled(tmp_path)
    run_until(pump, clock, motor, 75 * DAY_MS)
    assert "LOW_RESERVOIR" in pump.alarms.active and pump.state == "infusing"
    assert motor.strokes == 37_500


def test_the_alarm_state_never_pumps(tmp_path):
    pump, clock, motor = filled(tmp_path, volume_ul=600)
    run_until(pump, clock, motor, 30 * DAY_MS)
    assert motor.strokes == 200 and pump.state == "alarm"  # 600 → 500 µL, then nothing


def test_a_refill_clears_the_reservoir_alarms_and_therapy_resumes(tmp_path):
    pump, clock, motor = filled(tmp_path, volume_ul=2100)
    run_until(pump, clock, motor, 10 * DAY_MS)
    assert {"LOW_RESERVOIR", "EMPTY_RESERVOIR"} <= set(pump.alarms.active)
    pump.alarms.pop_events()
    pump.refill(20000, 2000)
    assert "LOW_RESERVOIR" not in pump.alarms.active and "EMPTY_RESERVOIR" not in pump.alarms.active
    cleared = {code for code, active, _ in pump.alarms.pop_events() if not active}
    # 2.1 mL ran low within a week of the fill, so its reminder was due at once: cleared too.
    assert cleared == {"LOW_RESERVOIR", "EMPTY_RESERVOIR", "REFILL_REMINDER"}
    assert pump.state == "infusing"
    before = motor.strokes
    run_until(pump, clock, motor, 11 * DAY_MS)
    assert motor.strokes - before == 500


def test_a_refill_below_the_thresholds_alarms_at_once(tmp_path):
    pump, _, _ = filled(tmp_path, volume_ul=1500)
    assert "LOW_RESERVOIR" in pump.alarms.active and pump.state == "infusing"
    pump.refill(500, 2000)
    assert "EMPTY_RESERVOIR" in pump.alarms.active and pump.state == "alarm"


def test_thresholds_are_programmable_and_checked_at_once(tmp_path):
    pump, clock, motor = filled(tmp_path, volume_ul=4_000)
    assert "LOW_RESERVOIR" not in pump.alarms.active
    pump.configure({"low_reservoir_ul": 4_000})
    assert pump.alarms.active["LOW_RESERVOIR"] == 0 and pump.state == "infusing"
    pump.configure({"low_reservoir_ul": 10_000, "empty_reservoir_ul": 2_000})
    run_until(pump, clock, motor, 10 * DAY_MS)
    # 4 mL − 4000 × 0.5 µL = 2 mL: the new empty threshold, at that stroke and no later.
    assert pump.alarms.active["EMPTY_RESERVOIR"] == 4000 * STROKE_MS and pump.state == "alarm"
    assert motor.strokes == 4000


def test_raise_and_clear_produce_one_event_each():
    a = alarms.Alarms()
    assert a.raise_("LOW_RESERVOIR", 10) and not a.raise_("LOW_RESERVOIR", 20)
    assert a.active == {"LOW_RESERVOIR": 10} and not a.critical()
    assert a.raise_("EMPTY_RESERVOIR", 30) and a.critical()
    assert a.clear("EMPTY_RESERVOIR", 40) and not a.clear("EMPTY_RESERVOIR", 50)
    assert a.pop_events() == [("LOW_RESERVOIR", True, 10), ("EMPTY_RESERVOIR", True, 30),
                              ("EMPTY_RESERVOIR", False, 40)]
    assert a.pop_events() == []
    assert a.listing()[0]["since_s"] == 0 and a.listing()[0]["priority"] == "medium"


class Battery:
    def __init__(self, mv):
        self.mv = mv

    def millivolts(self):
        return self.mv


def test_leaving_the_alarm_state_delivers_nothing_at_once(tmp_path):
    # Time spent in a critical alarm is not owed: a refill must not pump the missed days at once.
    pump, clock, motor = filled(tmp_path, volume_ul=2100)
    run_until(pump, clock, motor, 10 * DAY_MS)
    assert motor.strokes == 3200 and pump.state == "alarm"
    pump.refill(20000, 2000)
    pump.run_due(clock.now)
    assert motor.strokes == 3200
    assert pump.next_event_ms() - clock.now <= STROKE_MS


def test_a_new_battery_after_end_of_service_resumes_without_a_bolus(tmp_path):
    clock, motor, battery = FakeClock(), CountingMotor(), Battery(3200)
    pump = Pump(clock, motor, MemoryStore(), 500, EventLog(str(tmp_path)), battery)
    pump.boot()
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    battery.mv = 2600
    run_until(pump, clock, motor, 3 * DAY_MS)
    assert pump.state == "alarm" and "BATTERY_EOS" in pump.alarms.active
    stopped_at = motor.strokes
    assert stopped_at <= 22  # within the hour of the next battery reading
    battery.mv = 3200
    run_until(pump, clock, motor, 4 * DAY_MS)
    assert pump.state == "infusing" and "BATTERY_EOS" not in pump.alarms.active
    assert motor.strokes - stopped_at <= 500


def test_a_programme_waiting_for_drug_owes_nothing_meanwhile(tmp_path):
    clock, motor = FakeClock(), CountingMotor()
    pump = Pump(clock, motor, MemoryStore(), 500, EventLog(str(tmp_path)))
    pump.boot()
    pump.program_minimum()  # 6 µL/day, but no drug yet: the empty reservoir holds it
    assert pump.state == "alarm"
    clock.now = 30 * DAY_MS
    pump.run_due(clock.now)
    pump.refill(20000, 2000)
    run_until(pump, clock, motor, 31 * DAY_MS)
    assert motor.strokes == 12  # one day of 6 µL, not 31
