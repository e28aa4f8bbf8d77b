"""The firmware's figures that the docs quote in their prose are the firmware's: each phrase below
is found in docs/*.md or README.md at least once, and every figure it gives equals the code's. A
limit changed in the code, or a stale figure in a doc, fails with the phrase and the file."""

import re
import sys
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "firmware") not in sys.path:
    sys.path.insert(0, str(ROOT / "firmware"))

from pump import app, core, druglib, eventlog, link  # noqa: E402

DAY_MS = 86_400_000
# (phrase, with the figure as its group; the firmware's value)
FIGURES = [
    (r"(?:up to|1 to) (\d+) steps", druglib.MAX_FLEX_STEPS),
    (r"(\d+) µL/day", Fraction(druglib.MINIMUM_RATE_NL_PER_DAY, 1000)),
    (r"limit of (\d+) \(limit: max_daily_dose_ug\)", druglib.MAX_DAILY_DOSE_UG),
    (r"each delivered over (\d+) min", druglib.PATIENT_BOLUS_MINUTES),
    (r"`reminder_days`, default\s+(\d+)", druglib.REFILL_REMINDER_DAYS),
    (r"\((\d+) days, or `refill --reminder-days`", druglib.REFILL_REMINDER_DAYS),
    (r"less a lead time \((\d+) days", druglib.REMINDER_LEAD_DAYS),
    (r"([\d.]+) % by default", Fraction(druglib.DISCREPANCY_LIMIT_PERMILLE, 10)),
    (r"(?:at most|≤|reached its|nothing, for) (\d+) min", app.MAINTENANCE_MS // 60000),  # maintenance
    (r'"repl":true,"minutes":(\d+)', app.MAINTENANCE_MS // 60000),
    (r"after (\d+) failed authentications", app.AUTH_FAILURES_TO_LOCK),
    (r"lockout after (\d+) failures", app.AUTH_FAILURES_TO_LOCK),
    (r"(?:lock programming for|in a row \(for) (\d+) min", app.AUTH_LOCK_MS // 60000),  # auth lockout
    (r"programming locked (\d+) min", app.AUTH_LOCK_MS // 60000),
    (r"(\d+) attempts without feedback", core.MOTOR_ATTEMPTS),
    (r"tries (\d+) times a stroke", core.MOTOR_ATTEMPTS),
    (r"motor(?: is tried|'s retry) every (\d+) min", core.STALL_RETRY_MS // 60000),
    (r"`clock_ms` above (\d+) years", core.CLOCK_MAX_MS // (365 * DAY_MS)),
    (r"the last (\d+) events", eventlog.SLOTS),
    (r"longer than (\d+) bytes", link._LIMIT),
]


def docs():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("phrase, value", FIGURES, ids=[phrase for phrase, _ in FIGURES])
def test_the_docs_quote_the_firmware_s_figure(phrase, value):
    found = [(path.relative_to(ROOT), figure) for path in docs()
             for figure in re.findall(phrase, " ".join(path.read_text().split()))]
    assert found, "no doc says %r any more: reword the phrase here" % phrase
    for path, figure in found:
        assert Fraction(figure) == value, "%s: %r gives %s, the firmware %s" % (path, phrase, figure, value)
