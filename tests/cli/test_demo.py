"""`pumpsim demo` clears its folder before it runs, and so clears only a folder it made itself."""

import pytest

from pumpsim import cli
from pumpsim.demo import MARK, clear
from pumpsim.errors import PumpsimError


def test_a_folder_with_files_of_someone_elses_is_refused_and_kept(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert cli.main(["demo", "--dir", str(folder), "--days", "1"]) == 1
    assert "holds files the demo did not make" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_file_in_the_folders_place_is_refused(tmp_path):
    path = tmp_path / "demo"
    path.write_text("not a folder")
    with pytest.raises(PumpsimError):
        clear(path)
    assert path.read_text() == "not a folder"


def test_a_new_an_empty_or_a_demo_folder_is_cleared(tmp_path):
    new = tmp_path / "new"
    clear(new)
    assert [p.name for p in new.iterdir()] == [MARK]
    empty = tmp_path / "empty"
    empty.mkdir()
    clear(empty)
    assert [p.name for p in empty.iterdir()] == [MARK]
    (new / "flash.img").write_text("a demo's board")
    clear(new)  # a folder the demo made: cleared, marked again
    assert [p.name for p in new.iterdir()] == [MARK]


def test_the_demo_runs_90_days_and_writes_its_report(tmp_path):
    import csv
    import io
    import json

    from pumpsim.demo import run_demo
    from pumpsim.hil import report

    out = io.StringIO()
    result = run_demo(tmp_path / "demo", days=90, out=out)
    story = out.getvalue()
    # What it always told: the timeline, the rig's count, the programme and their difference.
    for line in ("  day  72.00  LOW_RESERVOIR (medium)", "  day  78.00  EMPTY_RESERVOIR (high)",
                 "rig measured    19500.000 µL  (39000 pulses of 500 nL)", "difference         +0.000 µL"):
        assert line in story
    assert (result["days"], result["pulses"], result["rig_delivered_nl"], result["difference_ul"]) == \
        (90, 39000, 19_500_000, 0.0)
    assert [a["code"] for a in result["alarms"]] == ["REFILL_REMINDER", "LOW_RESERVOIR", "EMPTY_RESERVOIR"]
    # And now the report of it, from the rig's trace and what the demo sent.
    page = tmp_path / "demo" / "report.html"
    assert result["report"] == str(page) and "report         %s" % page in story
    s = json.loads((page.parent / "summary.json").read_text())
    assert s["programme"] == "harness" and s["pulses"] == 39000
    assert (s["programmed_ul"], s["delivered_ul"], s["error_ul"]) == (19500.0, 19500.0, 0.0)
    # 500 strokes a day on the dot: 20 or 21 an hour of its 20.83, and exactly what longer windows
    # ask, until the empty reservoir stops the pump on day 78 (no window after it is steady).
    assert s["trumpet"] == {"1h": {"max_pct": 0.8, "min_pct": -4.0, "windows": 78 * 24 - 1, "stroke_pct": 4.8},
                            "6h": {"max_pct": 0.0, "min_pct": 0.0, "windows": 78 * 24 - 6, "stroke_pct": 0.8},
                            "24h": {"max_pct": 0.0, "min_pct": 0.0, "windows": 77 * 24, "stroke_pct": 0.2},
                            "168h": {"max_pct": 0.0, "min_pct": 0.0, "windows": 71 * 24, "stroke_pct": 0.029}}
    with open(page.parent / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 90 and sum(int(r["strokes"]) for r in rows) == 39000
    assert [r["alarms_raised"] for r in rows if r["day"] in ("65", "72", "78")] == [
        "REFILL_REMINDER", "LOW_RESERVOIR", "EMPTY_RESERVOIR"]
    assert all(r["strokes"] == "0" for r in rows[78:])
    for name in report.FIGURES:
        assert (page.parent / ("%s.png" % name)).stat().st_size > 10_000
