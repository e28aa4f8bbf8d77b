"""What the pump should have delivered, computed by the harness on its own.

Nothing here imports firmware code: the expected volume comes from the programmed dose, the drug
concentration and pump time, and is compared with the rig's pulse count.
"""

from fractions import Fraction

DAY_MS = 86_400_000
NL_PER_UG_PER_UG_PER_ML = 1_000_000  # µg ÷ (µg/mL) = mL = 1e6 nL


def continuous_volume_nl(daily_dose_ug, concentration_ug_per_ml, duration_ms):
    """The exact integral of a continuous profile, in nL (a Fraction)."""
    if concentration_ug_per_ml <= 0:
        raise ValueError("concentration must be positive")
    return Fraction(daily_dose_ug * NL_PER_UG_PER_UG_PER_ML * duration_ms,
                    concentration_ug_per_ml * DAY_MS)


def strokes_for(volume_nl, stroke_nl):
    """Whole strokes a volume needs: the pump strokes once each full stroke volume is due."""
    return int(Fraction(volume_nl) // stroke_nl)


def days_until(volume_nl, daily_dose_ug, concentration_ug_per_ml):
    """Pump days a continuous profile takes to deliver volume_nl (a Fraction)."""
    per_day = continuous_volume_nl(daily_dose_ug, concentration_ug_per_ml, DAY_MS)
    return Fraction(volume_nl) / per_day


class DoseMismatch(AssertionError):
    """The rig measured a volume that is not the programmed one."""


def check_delivered(measured_nl, expected_nl, stroke_nl, what="delivered volume"):
    """Raise DoseMismatch unless the rig's volume is within one stroke of the expected one."""
    error_nl = Fraction(measured_nl) - Fraction(expected_nl)
    if abs(error_nl) > stroke_nl:
        raise DoseMismatch(
            "%s: rig measured %.3f µL, programmed %.3f µL (off by %.3f µL, more than one %d nL stroke)"
            % (what, measured_nl / 1000, float(expected_nl) / 1000, float(error_nl) / 1000, stroke_nl)
        )
    return error_nl


MINUTE_MS = 60_000


def _dose_at(steps, minute_of_day):
    dose_ug = steps[-1][1]  # before the day's first step, the last one runs on
    for start_min, step_dose_ug in steps:
        if start_min <= minute_of_day:
            dose_ug = step_dose_ug
    return dose_ug


def daily_profile_volume_nl(steps, concentration_ug_per_ml, start_ms, end_ms):
    """The exact integral of a profile repeating daily: steps = [(minute of the day, µg/day)]."""
    total = Fraction(0)
    t = start_ms
    edges = sorted({m * MINUTE_MS for m, _ in steps} | {0})
    while t < end_ms:
        day_ms = t - t % DAY_MS
        later = [day_ms + e for e in edges if day_ms + e > t] + [day_ms + DAY_MS]
        segment_end = min(min(later), end_ms)
        dose_ug = _dose_at(steps, (t % DAY_MS) // MINUTE_MS)
        total += continuous_volume_nl(dose_ug, concentration_ug_per_ml, segment_end - t)
        t = segment_end
    return total


def bolus_volume_nl(volume_nl, start_ms, duration_ms, from_ms, to_ms):
    """The part of a bolus spread evenly over [start, start + duration) that falls in [from, to)."""
    a, b = max(start_ms, from_ms), min(start_ms + duration_ms, to_ms)
    return Fraction(volume_nl * max(0, b - a), duration_ms)
