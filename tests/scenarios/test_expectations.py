"""An expectation that the board does not meet is a FAIL row, its scenario fails and `pumpsim
scenario run` exits 1: each kind of expectation, wrong on purpose beside right ones."""

import json
from pathlib import Path

import pytest

from pumpsim import cli
from pumpsim.hil import report, scenario, scenario_runner

# 500 µg/day of 2000 µg/mL: 250 µL/day, 62.5 µL in 6 h. Each step marked `# wrong` expects what
# the pump does not do; the others what it does.
WRONG = '''\
[scenario]
name = "right and wrong expectations"
needs = ["stepped-clock"]
days = 1

[[step]]
at = "0s"
action = "refill"
volume_ul = 10000
concentration_ug_per_ml = 2000

[[step]]
at = "0s"
action = "program"
mode = "continuous"
daily_dose_ug = 500

[[step]]
at = "0s"
action = "expect-state"
state = "infusing"

[[step]]  # wrong
at = "0s"
action = "expect-state"
state = "stopped"

[[step]]
at = "6h"
action = "expect-alarms"
absent = ["LOW_RESERVOIR"]

[[step]]  # wrong
at = "6h"
action = "expect-alarms"
present = ["LOW_RESERVOIR"]

[[step]]  # wrong
at = "6h"
action = "expect-alarms"
acked = ["LOW_RESERVOIR"]

[[step]]
at = "6h"
action = "expect-delivered"
from = "0s"
volume_ul = 63

[[step]]  # wrong: 1.5 µL, three strokes, more than the rig counted
at = "6h"
action = "expect-delivered"
from = "0s"
volume_ul = 64

[[step]]
at = "6h"
action = "expect-delivered"
from = "0s"

[[step]]  # wrong: the 2 µL are within 4 strokes, not within the one stroke asked for
at = "6h"
action = "expect-delivered"
from = "0s"
volume_ul = 60
tolerance_strokes = 1

[[step]]
at = "6h"
action = "expect-delivered"
from = "0s"
volume_ul = 60
tolerance_ul = 3

[[step]]  # wrong: a clinician bolus of 10 µg is given
at = "12h"
action = "bolus"
kind = "clinician"
dose_ug = 10
minutes = 10
refused = "E_LIMIT"

[[step]]
at = "12h"
action = "program"
mode = "continuous"
daily_dose_ug = 5000
refused = "E_LIMIT"
limit = "max_daily_dose_ug"

[[step]]  # wrong: refused with another limit
at = "12h"
action = "program"
mode = "continuous"
daily_dose_ug = 5000
refused = "E_LIMIT"
limit = "max_rate_nl_per_day"

[[step]]  # wrong: a request the scenario expects to be accepted, refused
at = "12h"
action = "program"
mode = "continuous"
daily_dose_ug = 3000

[[step]]
at = "1d"
action = "expect-delivered"
from = "12h"
'''


def wrong_lines():
    lines = WRONG.splitlines()
    return {n for n, line in enumerate(lines, 1) if line.startswith("[[step]]  # wrong")}


@pytest.mark.pumpsim_needs("stepped-clock")
@pytest.mark.pumpsim_days(1)
def test_each_wrong_expectation_is_a_failed_row_and_only_those(bench):
    runner = scenario_runner.Runner(scenario.parse(WRONG, "wrong.toml"), bench.client(), bench.rig)
    rows = runner.run()
    failed = {row.line for row in rows if not row.passed}
    assert failed == wrong_lines(), scenario_runner.table(rows)
    assert len(rows) == 15 and not runner.passed
    by_line = {row.line: row for row in rows}
    refused = by_line[max(wrong_lines())]
    assert refused.seen == "refused E_LIMIT (max_daily_dose_ug)" and "3000" in refused.detail


def test_the_cli_marks_the_rows_that_failed_and_exits_1(tmp_path, capsys, from_image):
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG)
    board = tmp_path / "board"
    code = cli.main(["scenario", "run", str(path), "--dir", str(board)])
    out, err = capsys.readouterr()
    assert code == 1 and from_image == [board]
    assert err.strip() == "pumpsim: scenario %s: 8 of 15 expectations failed" % path
    rows = [line for line in out.splitlines() if line.endswith(("PASS", "FAIL"))]
    assert len(rows) == 15
    for row in rows:
        line = int(row.split()[1] if row.split()[1].isdigit() else row.split()[2])
        assert row.endswith("FAIL") == (line in wrong_lines()), row
    assert "state stopped" in out and "state infusing, mode continuous" in out
    assert out.rstrip().endswith("report    %s" % (board / "report.html"))


def test_json_gives_every_row(tmp_path, capsys, from_image):
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG)
    code = cli.main(["scenario", "run", str(path), "--dir", str(tmp_path / "board"), "--json"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert code == 1 and json.loads(err)["exit"] == 1
    assert result["passed"] is False and result["target"] == "emu" and result["dir"] == str(tmp_path / "board")
    assert {row["line"] for row in result["rows"] if row["result"] == "FAIL"} == wrong_lines()
    assert {row["at"] for row in result["rows"]} == {"0s", "6h", "12h", "1d"}
    assert set(result["rows"][0]) >= {"at", "at_ms", "line", "expected", "seen", "result"}
    # The report of the run beside its board: the rig's trace and the programme the scenario sent,
    # the requests the pump refused left out.
    assert result["report"] == str(tmp_path / "board" / "report.html") and Path(result["report"]).is_file()
    recording = report.Recording.load(tmp_path / "board" / report.RECORDING)
    assert recording.programme_source == "harness" and recording.start_ms == 0
    assert [(a["t_ms"], a["do"]) for a in recording.programme] == [(0, "refill"), (0, "program"),
                                                                    (43_200_000, "bolus")]
