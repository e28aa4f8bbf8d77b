"""`Machine.allowed` answers what `fire` would do: a guarded row whose guard says no is not allowed.
The pump asks `allowed` before it resumes or pulses the motor, so a yes there would be a stroke or a
transition the guard forbids (docs/safety.md, "uncontrolled delivery")."""

import pytest

from pump import fsm

# The guarded rows, from the contract of the state table: (trigger, state).
GUARDED = [("resume", "stopped"), ("stroke", "infusing"), ("stall_retry", "alarm")]


class Ctx:
    def __init__(self, answer):
        self.answer = answer
        self.asked = 0

    def _ask(self):
        self.asked += 1
        return self.answer

    can_infuse = can_infuse_but_stalled = _ask


@pytest.mark.parametrize("trigger, state", GUARDED)
def test_a_guarded_row_is_allowed_only_when_its_guard_says_yes(trigger, state):
    for answer in (True, False):
        ctx = Ctx(answer)
        assert fsm.Machine(ctx, state).allowed(trigger) is answer
        assert ctx.asked == 1
