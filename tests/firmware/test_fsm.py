"""The state table: every (state, trigger) pair is either a listed transition or refused."""

import pytest

from pump import fsm
from pump.errors import TransitionError


class Ctx:
    def __init__(self, infuse):
        self.infuse = infuse

    def can_infuse(self):
        return self.infuse


ALLOWED = {(t, s): d for t, s, d, g in fsm.TRANSITIONS}


@pytest.mark.parametrize("state", fsm.STATES)
@pytest.mark.parametrize("trigger", fsm.TRIGGERS)
def test_every_state_trigger_pair(state, trigger):
    machine = fsm.Machine(Ctx(True), state)
    if (trigger, state) in ALLOWED:
        assert machine.fire(trigger) == ALLOWED[(trigger, state)]
        assert machine.state == ALLOWED[(trigger, state)]
    else:
        with pytest.raises(TransitionError):
            machine.fire(trigger)
        assert machine.state == state


def test_a_guard_refuses_and_leaves_the_state():
    machine = fsm.Machine(Ctx(False), fsm.STOPPED)
    assert not machine.allowed("resume")
    with pytest.raises(TransitionError, match="guard"):
        machine.fire("resume")
    assert machine.state == fsm.STOPPED


def test_the_alarm_state_never_leads_straight_to_infusing():
    assert not [t for t in fsm.TRANSITIONS if t[1] == fsm.ALARM and t[2] == fsm.INFUSING]
