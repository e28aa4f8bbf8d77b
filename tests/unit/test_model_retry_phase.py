"""The reference model takes the phase of a stalled pump's motor retries from the rig, which saw
the last failed attempt on the motor's wires: its own stall may be up to a stroke off the pump's."""

from pumpsim.hil.model import STALL_RETRY_MS, PumpModel

DAY_MS = 86_400_000


def stalled_model():
    m = PumpModel(500)
    m.t_ms = m.boot_ms = 30 * DAY_MS
    m.refill(20_000, 2000)
    m.program("continuous", 500)
    m.advance(m.t_ms + DAY_MS)
    m.stall = "on"
    m.advance(m.t_ms + 4 * 3_600_000)
    assert "MOTOR_STALL" in m.alarms and m.next_retry_ms is not None
    return m


def test_the_next_retry_is_ten_minutes_after_the_rigs_last_failed_attempt():
    m = stalled_model()
    seen_ms = m.t_ms - 123_456  # the pump's own last retry, seen by the rig
    m.follow_retry_phase(seen_ms)
    assert m.next_retry_ms == seen_ms + STALL_RETRY_MS


def test_a_retry_due_at_this_very_moment_has_been_made():
    m = stalled_model()
    m.follow_retry_phase(m.t_ms - STALL_RETRY_MS)
    assert m.next_retry_ms == m.t_ms + STALL_RETRY_MS


def test_retries_skipped_in_a_critical_alarm_keep_the_phase():
    m = stalled_model()
    seen_ms = m.t_ms - 3 * STALL_RETRY_MS - 5_000  # then three retries without a pulse
    m.follow_retry_phase(seen_ms)
    assert m.next_retry_ms == seen_ms + 4 * STALL_RETRY_MS


def test_an_attempt_before_the_last_boot_does_not_set_it():
    m = stalled_model()
    m.power_cut()
    assert m.next_retry_ms == m.t_ms + STALL_RETRY_MS
    m.follow_retry_phase(m.t_ms - 1)
    assert m.next_retry_ms == m.t_ms + STALL_RETRY_MS


def test_a_pump_that_is_not_stalled_has_no_retry_to_follow():
    m = stalled_model()
    m.stall = "off"
    m.advance(m.next_retry_ms)
    assert "MOTOR_STALL" not in m.alarms and m.next_retry_ms is None
    m.follow_retry_phase(m.t_ms - 1000)
    assert m.next_retry_ms is None
