"""Quantities typed by people, turned into the integers the pump accounts in."""

import re
from decimal import Decimal, InvalidOperation

from pumpsim.errors import UsageError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|min|h|d)$")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """'90s', '15m', '36h', '10d', '1.5d', '500ms' → whole milliseconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise UsageError("duration %r: expected a number and a unit, e.g. 90s, 15m, 36h, 10d" % text)
    value = Decimal(match.group(1)) * _MS[match.group(2)]
    if value != value.to_integral_value():
        raise UsageError("duration %r is not a whole number of milliseconds" % text)
    return int(value)


def _decimal(text, what):
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise UsageError("%s %r is not a number" % (what, text)) from None
    if not value.is_finite():
        raise UsageError("%s %r is not a number" % (what, text))
    return value


def ml_to_ul(text, what="volume", allow_zero=False) -> int:
    """Millilitres as typed → whole µL, exactly (no float on the way)."""
    value = _decimal(text, what) * 1000
    if value != value.to_integral_value():
        raise UsageError("%s %s mL has more than 3 decimals (the pump counts whole µL)" % (what, text))
    if value < 0 or (value == 0 and not allow_zero):
        raise UsageError("%s must be above 0 mL, not %s" % (what, text))
    return int(value)


def positive_int(text, what) -> int:
    value = _decimal(text, what)
    if value != value.to_integral_value():
        raise UsageError("%s must be a whole number, not %s" % (what, text))
    if value <= 0:
        raise UsageError("%s must be above 0, not %s" % (what, text))
    return int(value)


_STEP = re.compile(r"^(?:(mon|tue|wed|thu|fri|sat|sun)/)?([01]?\d|2[0-3]):([0-5]\d)=(.+)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def flex_step(text):
    """'22:00=600' → (None, 1320, 600): from 22:00 each day, the rate of 600 µg/day.
    'sat/22:00=700' → (5, 1320, 700): a step of Saturday's own schedule."""
    match = _STEP.match(text.strip().lower())
    if not match:
        raise UsageError("flex step %r: expected [DAY/]HH:MM=µg/day, e.g. 22:00=600 or sat/22:00=700"
                         % text)
    day = WEEKDAYS.index(match.group(1)) if match.group(1) else None
    minute = int(match.group(2)) * 60 + int(match.group(3))
    return day, minute, positive_int(match.group(4), "flex step dose")


def percent_to_permille(text, what):
    value = _decimal(text, what) * 10
    if value != value.to_integral_value() or value < 0:
        raise UsageError("%s must be a percentage with at most one decimal, not %s" % (what, text))
    return int(value)


def volts_to_mv(text) -> int:
    value = _decimal(text, "voltage") * 1000
    if value != value.to_integral_value() or not 0 < value <= 5000:
        raise UsageError("voltage must be above 0 and at most 5 V, in mV steps, not %s" % text)
    return int(value)


_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def pump_clock_ms(clock_ms=None, day=None, time_of_day=None) -> int:
    """set-clock's pump time: --clock-ms MS, or --day D [--time HH:MM[:SS]] (the pump's day and
    time of day, as status shows them) → whole ms of pump time."""
    if (clock_ms is None) == (day is None):
        raise UsageError("set-clock: give --clock-ms MS or --day D [--time HH:MM[:SS]]")
    if clock_ms is not None:
        if time_of_day is not None:
            raise UsageError("set-clock: --time goes with --day, not with --clock-ms")
        value = _decimal(clock_ms, "--clock-ms")
        if value != value.to_integral_value() or value < 0:
            raise UsageError("--clock-ms must be a whole number of ms from 0, not %s" % clock_ms)
        return int(value)
    days = _decimal(day, "--day")
    if days != days.to_integral_value() or days < 0:
        raise UsageError("--day must be a whole number from 0, not %s" % day)
    ms = int(days) * _MS["d"]
    if time_of_day is not None:
        match = _CLOCK_TIME.match(time_of_day.strip())
        if not match:
            raise UsageError("--time %r: expected HH:MM or HH:MM:SS, e.g. 14:30" % time_of_day)
        ms += (int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3) or 0)) * 1000
    return ms
