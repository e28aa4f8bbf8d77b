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


def days_until(volume_nl, daily_dose_ug, concentration_ug_per_ml):
    """Pump days a continuous profile takes to deliver volume_nl (a Fraction)."""
    per_day = continuous_volume_nl(daily_dose_ug, concentration_ug_per_ml, DAY_MS)
    return Fraction(volume_nl) / per_day


class DoseMismatch(AssertionError):
    """The rig measured a volume that is not the programmed one."""


# Called with (measured_nl, expected_nl, error_nl) by each check: the pytest plugin keeps each
# test's worst error for its JUnit record (hil/evidence.py).
watchers = []


def check_delivered(measured_nl, expected_nl, stroke_nl, what="delivered volume"):
    """Raise DoseMismatch unless the rig's volume is within one stroke of the expected one."""
    error_nl = Fraction(measured_nl) - Fraction(expected_nl)
    for watcher in watchers:
        watcher(measured_nl, expected_nl, error_nl)
    if abs(error_nl) > stroke_nl:
        raise DoseMismatch(
            "%s: rig measured %.3f µL, programmed %.3f µL (off by %.3f µL, more than one %d nL stroke)"
            % (what, measured_nl / 1000, float(expected_nl) / 1000, float(error_nl) / 1000, stroke_nl)
        )
    return error_nl


MINUTE_MS = 60_000


def _steps_of_day(steps, week, day):
    return (week or {}).get(day % 7, steps)


def dose_at(steps, week, t_ms):
    day, minute = t_ms // DAY_MS, (t_ms % DAY_MS) // MINUTE_MS
    today = [d for m, d in _steps_of_day(steps, week, day) if m <= minute]
    # before the day's first step, the previous day's last step runs on
    return today[-1] if today else _steps_of_day(steps, week, day - 1)[-1][1]


def daily_profile_volume_nl(steps, concentration_ug_per_ml, start_ms, end_ms, week=None):
    """The exact integral of a flex profile: steps = [(minute of the day, µg/day)] every day,
    except weekdays (day number modulo 7) that week gives steps of their own."""
    total = Fraction(0)
    t = start_ms
    while t < end_ms:
        day_ms = t - t % DAY_MS
        edges = [day_ms + m * MINUTE_MS for m, _ in _steps_of_day(steps, week, t // DAY_MS)]
        segment_end = min([e for e in edges if e > t] + [day_ms + DAY_MS, end_ms])
        total += continuous_volume_nl(dose_at(steps, week, t), concentration_ug_per_ml, segment_end - t)
        t = segment_end
    return total


def bolus_volume_nl(volume_nl, start_ms, duration_ms, from_ms, to_ms):
    """The part of a bolus spread evenly over [start, start + duration) that falls in [from, to)."""
    a, b = max(start_ms, from_ms), min(start_ms + duration_ms, to_ms)
    return Fraction(volume_nl * max(0, b - a), duration_ms)


def drug_ug(from_nl, to_nl, bridge_nl, old_concentration_ug_per_ml, new_concentration_ug_per_ml):
    """The drug in the stretch [from_nl, to_nl) of what flowed since a concentration change, when
    the first bridge_nl of it was the old drug left in tubing and catheter (a Fraction of µg)."""
    old_nl = max(0, min(to_nl, bridge_nl) - from_nl)
    new_nl = max(0, to_nl - max(from_nl, bridge_nl))
    return Fraction(old_nl * old_concentration_ug_per_ml + new_nl * new_concentration_ug_per_ml,
                    NL_PER_UG_PER_UG_PER_ML)
