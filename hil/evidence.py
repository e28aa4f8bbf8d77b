"""What a test leaves behind for whoever reads its report (hil/plugin.py, docs/testing.md).

Every test that has a board records JUnit properties: the firmware and MicroPython versions the
board says it runs, the board, the target, the commit, the rig's pulses, and the worst delivery
error the test checked (`check_delivered`). A failed test also gets the board's log, the pump's
event log and the transcript of what the pump and the rig were asked and answered, as files in
its temporary folder (named by JUnit properties) and as sections of its report.
"""

import json
import logging
from fractions import Fraction

import pytest

from pumpsim.hil import verify

TRANSCRIBED = ("pumpsim.rig", "pumpsim.client")  # the loggers of each request and its reply
SECTION_LINES = 60  # of each piece of evidence, in the terminal report; the files hold it all


class _Transcript(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append("%s %s" % (record.name.rsplit(".", 1)[-1], record.getMessage()))


class Recording:
    """For the length of one test: the requests and replies, and the delivery checks."""

    def __init__(self, node):
        self.node = node
        self.bench = None
        self.transcript = _Transcript()
        self.worst_ul = self.worst_pct = None
        self._saved = []

    def __enter__(self):
        for name in TRANSCRIBED:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self.transcript)
        verify.watchers.append(self.checked)
        self.node.stash[_RECORDING] = self
        return self

    def __exit__(self, *exc):
        verify.watchers.remove(self.checked)
        for logger, level in self._saved:
            logger.removeHandler(self.transcript)
            logger.setLevel(level)

    def checked(self, measured_nl, expected_nl, error_nl):
        """A delivery check of the test: keep the worst error, in µL and in % of the expected."""
        error_ul = Fraction(error_nl) / 1000
        if self.worst_ul is None or abs(error_ul) > abs(self.worst_ul):
            self.worst_ul = error_ul
        if expected_nl:
            error_pct = Fraction(error_nl) * 100 / Fraction(expected_nl)
            if self.worst_pct is None or abs(error_pct) > abs(self.worst_pct):
                self.worst_pct = error_pct

    def finish(self, config, run):
        """The test's JUnit properties, while its board is still there."""
        properties = dict(run)
        properties.update(_board_says(self.bench))
        if self.worst_ul is not None:
            properties["delivery_error_worst_ul"] = "%.3f" % self.worst_ul
        if self.worst_pct is not None:
            properties["delivery_error_worst_pct"] = "%.3f" % self.worst_pct
        for n, path in enumerate(self.bench.reports):
            suffix = "" if n == 0 else "_%d" % (n + 1)
            properties["pumpsim_report" + suffix] = str(path)
            figures = json.loads((path.parent / "summary.json").read_text())
            for name in ("worst_hourly_error_ul", "worst_hourly_error_pct"):
                properties["report_" + name + suffix] = "%s" % figures[name]
        for name, value in properties.items():
            self.node.user_properties.append((name, value))


_RECORDING = pytest.StashKey()


def _board_says(bench):
    """pumpsim_board, firmware_version, micropython_version (the pump's hello: what was flashed)
    and rig_pulses (the rig's count)."""
    from pumpsim.errors import PumpsimError

    said = {}
    try:
        with bench.client(key=False) as client:
            hello = client.hello()
        said["pumpsim_board"] = hello.get("board", "unknown")
        said["firmware_version"] = hello.get("fw", "unknown")
        said["micropython_version"] = hello.get("micropython", "unknown")
    except PumpsimError as exc:
        said["pumpsim_board"] = said["firmware_version"] = said["micropython_version"] = (
            "the pump did not answer: %s" % exc)
    try:
        said["rig_pulses"] = bench.raw_rig.measure()["pulses"]
    except PumpsimError as exc:
        said["rig_pulses"] = "the rig did not answer: %s" % exc
    return said


def gather(bench, transcript_lines):
    """{name: text} of a failed test's evidence, each read as far as the board still answers."""
    from pumpsim.errors import PumpsimError

    evidence = {}
    if bench.dir is not None:
        for path in sorted(bench.dir.rglob("*.log")):
            evidence["board log " + path.relative_to(bench.dir).as_posix()] = path.read_text(errors="replace")
    try:
        with bench.client(key=False) as client:
            events = client.log()
        evidence["pump event log"] = "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
    except PumpsimError as exc:
        evidence["pump event log"] = "the pump did not give its log: %s\n" % exc
    try:
        measured = json.dumps(bench.raw_rig.measure(), sort_keys=True)
    except PumpsimError as exc:
        measured = "the rig did not answer: %s" % exc
    evidence["rig trace"] = "".join(line + "\n" for line in transcript_lines) + "rig at the failure: %s\n" % measured
    return evidence


def attach(item, report, bench):
    """Write a failed test's evidence beside its board and name it in its report and JUnit."""
    recording = item.stash.get(_RECORDING, None)
    lines = recording.transcript.lines if recording else []
    folder = bench.evidence_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in gather(bench, lines).items():
        path = folder / (name.replace(" ", "-").replace("/", "-") + ".txt")
        path.write_text(text)
        item.user_properties.append(("attachment " + name, str(path)))
        tail = text.splitlines()[-SECTION_LINES:]
        report.sections.append(("pumpsim: %s (last %d lines; all of it in %s)" % (name, len(tail), path),
                                "\n".join(tail)))
