"""Progress of long runs on a terminal only: a bar there, nothing (no \\r) in a file or a CI log."""

import io
import sys

from pumpsim import cli
from pumpsim.demo import days_bar

HOUR_MS = 3_600_000


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_demos_days_show_as_a_bar_on_a_terminal_and_not_in_a_file():
    for out, shown in ((Terminal(), True), (io.StringIO(), False)):
        with days_bar(3, out=out) as bar:
            for _ in range(3):
                bar.update(1)
        assert ("\r" in out.getvalue() and "3/3" in out.getvalue()) is shown, out.getvalue()
        assert shown or out.getvalue() == ""


class FakeRig:
    def __init__(self, calls):
        self.calls = calls

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def advance(self, ms):
        self.calls.append(ms)
        return {"clock_ms": sum(self.calls)}


def advance(monkeypatch, capsys, duration, stderr):
    calls = []
    monkeypatch.setattr(cli.Target, "__init__", lambda self, args: None)
    monkeypatch.setattr(cli.Target, "rig", lambda self: FakeRig(calls))
    monkeypatch.setattr(sys, "stderr", stderr)
    assert cli.main(["rig", "advance", duration]) == 0
    return calls, capsys.readouterr().out


def test_a_long_advance_at_a_terminal_goes_an_hour_at_a_time_under_a_bar(monkeypatch, capsys):
    terminal = Terminal()
    calls, out = advance(monkeypatch, capsys, "2d", terminal)
    assert calls == [HOUR_MS] * 48 and out.strip() == "pump time: 2.000 days"
    assert "\r" in terminal.getvalue() and "2.00/2.00 days" in terminal.getvalue()


def test_in_a_log_or_under_a_day_an_advance_is_one_request_and_no_bar(monkeypatch, capsys):
    log = io.StringIO()
    calls, out = advance(monkeypatch, capsys, "2d", log)
    assert calls == [2 * 24 * HOUR_MS] and log.getvalue() == ""
    terminal = Terminal()
    calls, out = advance(monkeypatch, capsys, "23h", terminal)
    assert calls == [23 * HOUR_MS] and terminal.getvalue() == ""
