"""The firmware's state table checked against the reference model's `transitions` machine
(hil/model.py), written from the docs and the contract rather than from firmware/pump/fsm.py."""

import pytest
from transitions import MachineError

from pump import fsm
from pumpsim.hil import model

MODEL_ROWS = {(t["trigger"], t["source"]): t["dest"] for t in model.TRANSITIONS}
MODEL_GUARDED = {(t["trigger"], t["source"]) for t in model.TRANSITIONS if t.get("conditions")}
FIRMWARE_ROWS = {(row[0], row[1]): row[2] for row in fsm.TRANSITIONS}
FIRMWARE_GUARDED = {(row[0], row[1]) for row in fsm.TRANSITIONS if row[3] is not None}
# Every motor pulse is a row (contract, hazard 5): a stroke, and the retry of a stalled motor.
PULSES = {"stroke", "stall_retry"}


def test_the_same_states():
    assert set(fsm.STATES) == set(model.STATES)


def test_the_same_rows():
    assert FIRMWARE_ROWS == MODEL_ROWS
    assert len(fsm.TRANSITIONS) == len(MODEL_ROWS)  # no shadowed duplicates


def test_the_rows_both_have_go_to_the_same_state():
    shared = set(FIRMWARE_ROWS) & set(MODEL_ROWS)
    assert {k: FIRMWARE_ROWS[k] for k in shared} == {k: MODEL_ROWS[k] for k in shared}
    assert set(FIRMWARE_ROWS) - set(MODEL_ROWS) == set()  # nothing the docs do not allow


def test_guards_where_the_model_has_them():
    assert FIRMWARE_GUARDED == MODEL_GUARDED


def test_the_motor_pulses_in_the_rows_the_model_says_and_no_other():
    assert {row[0] for row in fsm.TRANSITIONS if row[4]} == PULSES
    assert {t for t, _ in MODEL_ROWS} >= PULSES


def test_no_row_leaves_alarm_for_infusing():
    assert all(d != "infusing" for (_, s), d in FIRMWARE_ROWS.items() if s == "alarm")


class _Pump:
    """The model's machine with its guards answered by the test."""

    def __init__(self, allow):
        self.allow = allow

    def can_infuse(self):
        return self.allow

    def can_retry(self):
        return self.allow


@pytest.mark.parametrize("state", model.STATES)
@pytest.mark.parametrize("trigger", sorted({t for t, _ in MODEL_ROWS}))
@pytest.mark.parametrize("allow", [True, False])
def test_the_model_machine_follows_its_table(state, trigger, allow):
    machine = model.new_machine(_Pump(allow))
    machine.machine.set_state(state)  # a test may place the machine; the pump never does
    row = MODEL_ROWS.get((trigger, state))
    if row is None:
        with pytest.raises(MachineError):
            machine.trigger(trigger)
        assert machine.state == state
        return
    fired = machine.trigger(trigger)
    guarded = (trigger, state) in MODEL_GUARDED
    assert fired == (allow or not guarded)
    assert machine.state == (row if fired else state)
    assert not hasattr(machine, "to_infusing")  # no shortcut around the guards
