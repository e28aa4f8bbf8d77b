"""The reference model's `stall next N` (docs/cli.md): exactly the next N motor attempts fail, then
the motor turns. A stroke makes three attempts (fewer failing ones: the stroke turns on a retry
within it) and a stalled motor's retry, every 10 minutes, one."""

import pytest

from pumpsim.hil.model import STALL_RETRY_MS, PumpModel

STROKE_MS = 172_800  # 500 µg/day of 2000 µg/mL in strokes of 500 nL


def infusing():
    m = PumpModel(500)
    m.refill(10_000, 2000)
    m.program("continuous", 500)
    m.advance(STROKE_MS * 10)
    assert m.delivered_nl == 10 * 500
    return m


@pytest.mark.parametrize("attempts", [1, 2])
def test_fewer_than_a_stroke_s_attempts_are_a_slip_delivered_on_time(attempts):
    m = infusing()
    m.set_stall("next", attempts)
    m.advance(m.t_ms + STROKE_MS * 10)
    assert "MOTOR_STALL" not in m.alarms and m.delivered_nl == 20 * 500


@pytest.mark.parametrize("attempts, retries", [(3, 1), (4, 2), (6, 4)])
def test_a_stall_of_the_next_stroke_clears_at_the_retry_after_the_last_failing_attempt(attempts, retries):
    m = infusing()
    m.set_stall("next", attempts)
    m.advance(m.t_ms + STROKE_MS)  # the next stroke's three attempts fail
    stalled_ms = m.alarms["MOTOR_STALL"]
    assert stalled_ms == 11 * STROKE_MS and m.delivered_nl == 10 * 500
    m.advance(stalled_ms + retries * STALL_RETRY_MS - 1)
    assert "MOTOR_STALL" in m.alarms and m.delivered_nl == 10 * 500
    m.advance(stalled_ms + retries * STALL_RETRY_MS)
    assert "MOTOR_STALL" not in m.alarms and m.delivered_nl == 11 * 500  # the retry's stroke
    assert m.stall == "off"


def test_while_stalled_each_of_the_n_attempts_is_a_retry():
    m = infusing()
    m.set_stall("on")
    m.advance(m.t_ms + STROKE_MS)
    stalled_ms = m.alarms["MOTOR_STALL"]
    m.set_stall("next", 2)
    m.advance(stalled_ms + 2 * STALL_RETRY_MS)
    assert "MOTOR_STALL" in m.alarms
    m.advance(stalled_ms + 3 * STALL_RETRY_MS)
    assert "MOTOR_STALL" not in m.alarms
