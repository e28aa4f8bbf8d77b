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
