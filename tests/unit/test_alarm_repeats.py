"""An alarm nobody acknowledges keeps sounding while its cause remains: the critical (high) ones
every 10 min, the others every 60 min (docs/safety.md, "Alarms")."""

import pytest

from pump import alarms

MIN_MS = 60_000


def sounded_minutes(code, minutes):
    """The minutes, from 0 to `minutes`, at which an alarm raised at 0 and never acknowledged sounds."""
    a = alarms.Alarms()
    a.raise_(code, 0)
    return [t for t in range(minutes + 1) if a.due_sound(t * MIN_MS)]


@pytest.mark.parametrize("code", ["MOTOR_STALL", "EMPTY_RESERVOIR"])
def test_a_critical_alarm_sounds_again_every_10_minutes(code):
    assert sounded_minutes(code, 45) == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("code", ["LOW_RESERVOIR", "BATTERY_ERI"])
def test_a_medium_alarm_sounds_again_every_60_minutes(code):
    assert sounded_minutes(code, 150) == [0, 60, 120]
