"""The pump's state table, walked for every (state, trigger) pair against the table written here."""

import pytest

from pump import fsm
from pump.errors import PumpError, TransitionError

# The specification, written independently of firmware/pump/fsm.py: (trigger, state) -> next state.
# "resume" and "stroke" are guarded: only a pump with drug, a programme and no critical alarm may
# infuse; "stall_retry" only while a stalled motor is the one critical alarm.
SPEC = {
    ("booted", "boot"): "stopped",
    ("resume", "stopped"): "infusing",
    ("program", "stopped"): "stopped",
    ("program", "infusing"): "infusing",
    ("program", "alarm"): "alarm",
    ("stop", "stopped"): "stopped",
    ("stop", "infusing"): "stopped",
    ("stop", "alarm"): "alarm",
    ("bolus", "stopped"): "stopped",
    ("bolus", "infusing"): "infusing",
    ("refill", "stopped"): "stopped",
    ("refill", "infusing"): "infusing",
    ("refill", "alarm"): "stopped",
    ("critical", "stopped"): "alarm",
    ("critical", "infusing"): "alarm",
    ("critical", "alarm"): "alarm",
    ("cleared", "alarm"): "stopped",
    ("stroke", "infusing"): "infusing",
    ("stall_retry", "alarm"): "alarm",
}
GUARDED = {("resume", "stopped"), ("stroke", "infusing"), ("stall_retry", "alarm")}
# The only rows that may move the motor.
PULSES = {("stroke", "infusing"), ("stall_retry", "alarm")}
STATES = ("boot", "stopped", "infusing", "alarm")
TRIGGERS = ("booted", "resume", "program", "stop", "bolus", "refill", "critical", "cleared", "stroke",
            "stall_retry")


class Ctx:
    def __init__(self, can_infuse):
        self.asked = 0
        self._can = can_infuse

    def can_infuse(self):
        self.asked += 1
        return self._can

    can_infuse_but_stalled = can_infuse


class Motor:
    def __init__(self):
        self.steps = 0

    def stroke(self):
        self.steps += 1
        return True


def test_the_firmware_knows_the_same_states_and_triggers():
    assert set(fsm.STATES) == set(STATES)
    assert set(fsm.TRIGGERS) == set(TRIGGERS)
    assert {(row[0], row[1]): row[2] for row in fsm.TRANSITIONS} == SPEC
    assert len(fsm.TRANSITIONS) == len(SPEC)  # one row per pair: no shadowed duplicates


def test_triggers_are_named_constants_and_the_state_cannot_be_assigned():
    for trigger in TRIGGERS:
        assert getattr(fsm, trigger.upper()) == trigger
    machine = fsm.Machine(Ctx(True), "stopped")
    with pytest.raises(AttributeError):
        machine.state = "infusing"
    assert machine.state == "stopped"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_the_motor_moves_only_through_a_pulsing_row(state, trigger):
    for can in (True, False):
        motor = Motor()
        machine = fsm.Machine(Ctx(can), state, motor=motor)
        if (trigger, state) in PULSES and can:
            assert machine.pulse(trigger) is True
            assert motor.steps == 1 and machine.state == SPEC[(trigger, state)]
        else:
            with pytest.raises(TransitionError):
                machine.pulse(trigger)
            assert motor.steps == 0 and machine.state == state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_pair_goes_where_the_table_says_or_is_refused(state, trigger):
    machine = fsm.Machine(Ctx(True), state)
    if (trigger, state) in SPEC:
        assert machine.allowed(trigger)
        assert machine.fire(trigger) == SPEC[(trigger, state)]
        assert machine.state == SPEC[(trigger, state)]
    else:
        assert not machine.allowed(trigger)
        with pytest.raises(TransitionError):
            machine.fire(trigger)
        assert machine.state == state


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_a_failing_guard_refuses_and_changes_nothing(state, trigger):
    ctx = Ctx(False)
    machine = fsm.Machine(ctx, state)
    guarded = (trigger, state) in GUARDED
    if (trigger, state) in SPEC and not guarded:
        machine.fire(trigger)
        assert ctx.asked == 0  # unguarded rows never consult the context
    else:
        with pytest.raises(TransitionError):
            machine.fire(trigger)
        assert machine.state == state
        assert ctx.asked == (1 if guarded else 0)


def test_the_refusal_is_a_firmware_error_reported_as_e_state():
    assert issubclass(TransitionError, PumpError)
    assert TransitionError.code == "E_STATE"


def test_no_row_leads_from_alarm_to_infusing():
    # A critical alarm must be cleared (to stopped) before the guard is asked again.
    assert all(dest != "infusing" for (_, source), dest in SPEC.items() if source == "alarm")


def test_a_machine_without_a_motor_refuses_to_pulse_and_keeps_its_state():
    machine = fsm.Machine(Ctx(True), "infusing")
    with pytest.raises(TransitionError):
        machine.pulse("stroke")
    assert machine.state == "infusing"
