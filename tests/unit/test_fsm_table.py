"""The pump's state table, walked for every (state, trigger) pair against the table written here."""

import pytest

from pump import fsm
from pump.errors import PumpError, TransitionError

# The specification, written independently of firmware/pump/fsm.py: (trigger, state) -> next state.
# "resume" is guarded: only a pump with drug, a programme and no critical alarm may infuse.
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
}
STATES = ("boot", "stopped", "infusing", "alarm")
TRIGGERS = ("booted", "resume", "program", "stop", "bolus", "refill", "critical", "cleared")


class Ctx:
    def __init__(self, can_infuse):
        self.asked = 0
        self._can = can_infuse

    def can_infuse(self):
        self.asked += 1
        return self._can


def test_the_firmware_knows_the_same_states_and_triggers():
    assert set(fsm.STATES) == set(STATES)
    assert set(fsm.TRIGGERS) == set(TRIGGERS)
    assert {(t, s): d for t, s, d, _ in fsm.TRANSITIONS} == SPEC
    assert len(fsm.TRANSITIONS) == len(SPEC)  # one row per pair: no shadowed duplicates


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
    guarded = (trigger, state) == ("resume", "stopped")
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
