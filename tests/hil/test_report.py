"""The delivery report (hil/report.py): its trumpet figures on stroke trains with a known answer,
its plots' structure, its CSV's sums, the programme it reads from a pump's log, and
`pumpsim report` on a virtual board."""

import csv
import json
from fractions import Fraction

import pytest

from pumpsim.hil import report
from pumpsim.hil.model import HOUR_MS

from .helpers import run_cli

DAY_MS = 86_400_000
# 500 µg/day of 2000 µg/mL is 250 µL/day: 500 strokes of 500 nL, one every 172.8 s.
EVERY_MS = 172_800


def regular(days, missing=(), extra=()):
    """A recording of 500 µg/day from a 20 mL fill at pump time 0, strokes on the dot."""
    programme = report.Programme()
    programme.note(0, "refill", volume_ul=20_000, concentration_ug_per_ml=2000)
    programme.note(0, "program", mode="continuous", daily_dose_ug=500)
    end = int(days * DAY_MS)
    strokes = sorted([EVERY_MS * k for k in range(1, end // EVERY_MS + 1) if EVERY_MS * k not in missing]
                     + list(extra))
    return report.Recording(stroke_nl=500, start_ms=0, end_ms=end, programme=list(programme),
                            programme_source="harness", strokes_ms=strokes, samples=[[end, len(strokes)]])


def test_a_regular_stroke_train_is_off_by_less_than_a_stroke_in_every_window():
    analysis = report.analyse(regular(21))
    t = analysis.trumpet
    # An hour holds 20 or 21 strokes of its 20.83 programmed; 6 h exactly 125, as every longer window.
    assert t[1]["max_pct"] == Fraction(4, 5) and t[1]["min_pct"] == -4
    for window in (6, 24, 168):
        assert t[window]["max_pct"] == t[window]["min_pct"] == 0
    assert t[1]["windows"] == 21 * 24 and t[168]["windows"] == 14 * 24 + 1
    for window, figures in t.items():
        assert figures["stroke_pct"] == Fraction(500 * 100) / (Fraction(250_000, 24) * window)
        assert abs(figures["max_pct"]) < figures["stroke_pct"] and abs(figures["min_pct"]) < figures["stroke_pct"]
    s = report.summary(analysis)
    assert (s["programmed_ul"], s["delivered_ul"], s["error_ul"]) == (5250.0, 5250.0, 0.0)
    assert (s["worst_hourly_error_ul"], s["worst_hourly_error_pct"]) == (-0.417, -4.0)


def test_a_missing_stroke_is_the_smallest_error_of_every_window_that_holds_it():
    lost = 5 * DAY_MS + 10 * EVERY_MS  # in the first hour of day 5, which holds 20 strokes
    t = report.analyse(regular(21, missing={lost})).trumpet
    # 19 strokes in its hour, 124 of 125 in 6 h, 499 of 500 a day, 3499 of 3500 in a week.
    assert t[1]["min_pct"] == (Fraction(19 * 500) - Fraction(250_000, 24)) * 100 / Fraction(250_000, 24)
    assert t[6]["min_pct"] == Fraction(-100, 125)
    assert t[24]["min_pct"] == Fraction(-100, 500)
    assert t[168]["min_pct"] == Fraction(-100, 3500)
    assert t[6]["max_pct"] == t[24]["max_pct"] == 0
    # An extra stroke (a double pulse) is the largest.
    t = report.analyse(regular(21, extra={lost + 1})).trumpet
    assert t[24]["max_pct"] == Fraction(100, 500) and t[24]["min_pct"] == 0


def test_windows_across_a_refill_or_a_critical_alarm_are_left_out():
    rec = regular(21)
    rec.programme.append({"t_ms": 3 * DAY_MS + HOUR_MS // 2, "do": "refill", "volume_ul": 20_000,
                          "concentration_ug_per_ml": 2000})
    rec.events = [{"seq": 1, "event": "motor_stall", "t_ms": 16 * DAY_MS},
                  {"seq": 2, "event": "motor_stall_recovered", "t_ms": 16 * DAY_MS + 2 * HOUR_MS}]
    analysis = report.analyse(rec)
    left_out = [h["start_ms"] for h in analysis.hours if not h["steady"]]
    assert left_out == [3 * DAY_MS, 16 * DAY_MS, 16 * DAY_MS + HOUR_MS]
    assert analysis.trumpet[1]["windows"] == 21 * 24 - 3
    # A week of steady flow fits only between the refill and the stall (311 hours), not before
    # the refill (72) nor after the stall (118).
    assert analysis.trumpet[168]["windows"] == 311 - 168 + 1
    assert analysis.alarm_spans == [("MOTOR_STALL", 16 * DAY_MS, 16 * DAY_MS + 2 * HOUR_MS)]


def _events_of_a_run():
    return [
        {"seq": 1, "event": "alarm", "code": "LOW_RESERVOIR", "active": True, "t_ms": 0, "priority": "medium"},
        {"seq": 2, "event": "alarm", "code": "LOW_RESERVOIR", "active": False, "t_ms": 0, "priority": "medium"},
        {"seq": 3, "event": "refill", "volume_ul": 20_000, "concentration_ug_per_ml": 2000, "t_ms": 0},
        {"seq": 4, "event": "program", "old": "none", "new": "continuous 500 ug/day", "t_ms": 0},
        {"seq": 5, "event": "alarm", "code": "REFILL_REMINDER", "active": True, "t_ms": 2 * DAY_MS,
         "priority": "medium"},
        {"seq": 6, "event": "alarm_ack", "code": "REFILL_REMINDER", "t_ms": 2 * DAY_MS + HOUR_MS},
    ]


def test_the_plots_have_their_axes_series_and_units():
    rec = regular(10)
    rec.events = _events_of_a_run()
    rec.tones = [{"t_ms": 2 * DAY_MS + k * HOUR_MS, "duration_ms": 500, "pattern": "single"} for k in range(20)]
    rec.tones.append({"t_ms": 0, "duration_ms": 1000, "pattern": "two-tone"})
    figs = report.figures(report.analyse(rec))
    assert sorted(figs) == sorted(report.FIGURES)

    def labelled(ax, x, y):
        assert x in ax.get_xlabel() and y in ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())

    def data(line):
        xs, ys = line.get_data()
        assert len(xs) == len(ys) > 0
        return list(xs), list(ys)

    def series(ax):  # the lines with a label: not a refill's line, a marker or an axis line
        return [line for line in ax.get_lines() if not line.get_label().startswith("_")]

    top, bottom = figs["cumulative"].axes
    labelled(top, "", "(mL)")
    labelled(bottom, "(days)", "(µL)")
    programmed, delivered = series(top)
    assert len(data(programmed)[0]) == 10 * 24 + 1 and data(programmed)[1][-1] == pytest.approx(2.5)
    assert data(delivered)[1][-1] == pytest.approx(2.5)
    assert max(abs(y) for y in data(bottom.get_lines()[0])[1]) <= 0.5  # within one stroke, in µL

    (ax,) = figs["reservoir"].axes
    labelled(ax, "(days)", "(µL)")
    reservoir, low, empty = series(ax)
    assert data(reservoir)[1][0] == 20_000 and data(reservoir)[1][-1] == 17_500
    assert set(data(low)[1]) == {2000} and set(data(empty)[1]) == {500}
    markers = [line for line in ax.get_lines()[3:] if line.get_marker() in report.MARKER_OF.values()]
    assert sorted(line.get_marker() for line in markers) == ["D", "^", "^", "v"]  # rose, acked, rose, cleared
    assert [t.get_text() for t in figs["reservoir"].legends[0].get_texts()][:3] == [
        "reservoir: last fill − rig-counted since", "LOW threshold", "EMPTY threshold"]

    top, bottom = figs["hourly"].axes
    labelled(top, "", "(µL)")
    labelled(bottom, "(days)", "(%")
    assert sorted(set(round(y, 3) for y in data(top.get_lines()[0])[1])) == [-0.417, 0.083]
    assert sorted(set(round(y, 3) for y in data(bottom.get_lines()[0])[1])) == [-4.0, 0.8]

    (ax,) = figs["trumpet"].axes
    labelled(ax, "observation window", "(% of programmed)")
    largest, smallest = ax.get_lines()[:2]
    assert data(largest) == ([1, 6, 24, 168], [0.8, 0, 0, 0])
    assert data(smallest) == ([1, 6, 24, 168], [-4.0, 0, 0, 0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 h", "6 h", "24 h", "7 d"]

    (ax,) = figs["tones"].axes
    labelled(ax, "(days)", "")
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "rig heard: two-tone (1)", "rig heard: single (20)", "REFILL_REMINDER active (pump's log)"]
    two_tone, single = ax.get_lines()
    assert len(data(single)[0]) == 20 and data(two_tone)[0] == [0.0]


def test_the_csv_has_a_row_a_day_summing_to_the_totals(tmp_path):
    rec = regular(Fraction(41, 4), missing={3 * DAY_MS + 7 * EVERY_MS})  # a last day of 6 hours
    rec.events = _events_of_a_run()
    page = report.write_report(tmp_path, rec)
    assert page == tmp_path / "report.html"
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(report.CSV_COLUMNS)
    assert [int(r["day"]) for r in rows] == list(range(11)) and rows[-1]["hours"] == "6"
    s = json.loads((tmp_path / "summary.json").read_text())
    assert sum(int(r["strokes"]) for r in rows) == s["pulses"] == 5000 + 125 - 1
    assert sum(int(r["delivered_nl"]) for r in rows) == s["delivered_ul"] * 1000
    assert sum(Fraction(r["programmed_nl"]) for r in rows) == pytest.approx(s["programmed_ul"] * 1000, abs=0.01)
    assert rows[3]["error_ul"] == "-0.500" and rows[3]["strokes"] == "499"
    assert rows[0]["alarms_raised"] == "LOW_RESERVOIR" and rows[2]["alarms_acknowledged"] == "REFILL_REMINDER"
    assert rows[9]["reservoir_ul"] == "17500.500"  # 20 mL less 10 days of strokes, one of them missing
    # The page shows each plot and the trumpet's table; the recording makes it all again.
    text = page.read_text()
    for name in report.FIGURES:
        assert '<img src="%s.png"' % name in text and (tmp_path / ("%s.png" % name)).stat().st_size > 10_000
    assert "<td>1 h</td><td>+0.80 %</td><td>-8.80 %</td>" in text
    assert "sent by the harness itself (2 actions" in text
    again = report.summary(report.Recording.load(tmp_path / report.RECORDING))
    assert again == s


def test_a_png_is_a_drawing_not_a_blank(tmp_path):
    from PIL import Image

    report.write_report(tmp_path, regular(3))
    for name in report.FIGURES:
        image = Image.open(tmp_path / ("%s.png" % name)).convert("L")
        colours = image.getcolors(maxcolors=1 << 16)
        assert image.size[0] >= 800 and len(colours) > 20, name  # lines, text and ticks on white


def test_the_programme_read_from_a_pumps_log():
    events = _events_of_a_run() + [
        {"seq": 7, "event": "bolus_start", "kind": "clinician", "dose_ug": 20, "minutes": 30, "volume_nl": 10_000,
         "t_ms": 3 * DAY_MS},
        {"seq": 8, "event": "program", "old": "continuous 500 ug/day", "new": "flex 2 steps, 508 ug/day",
         "t_ms": 4 * DAY_MS},
        {"seq": 9, "event": "motor_stall", "attempts": 3, "t_ms": 5 * DAY_MS},
        {"seq": 10, "event": "motor_stall_recovered", "strokes": 1000, "t_ms": 5 * DAY_MS + HOUR_MS},
        {"seq": 11, "event": "program", "old": "flex 2 steps, 508 ug/day", "new": "flex 2 steps, 550 ug/day",
         "t_ms": 6 * DAY_MS},
    ]
    notes = []
    actions = report.programme_from_log(events, {"mode": "flex", "steps": ["00:00=500", "20:00=700"]}, notes)
    assert [(a["do"], a.get("mode") or a.get("kind")) for a in actions] == [
        ("refill", None), ("program", "continuous"), ("ack", None), ("bolus", "clinician"), ("program", "continuous"),
        ("stall", "on"), ("stall", "off"), ("program", "flex")]
    assert actions[4]["daily_dose_ug"] == 508  # an earlier flex: its mean, and a note says so
    assert "stands as its day's mean, 508 µg/day" in notes[0]
    assert actions[-1]["steps"] == [[0, 500], [1200, 700]]  # the one running: from status
    assert actions[6]["t_ms"] == 5 * DAY_MS + HOUR_MS - 1


class TraceLessRig:
    """A rig as the rig Pico is: it counts and hears, but keeps no stroke times."""

    def __init__(self, pulses, clock_ms):
        self.pulses, self.clock_ms = pulses, clock_ms

    def measure(self):
        return {"pulses": self.pulses, "stroke_nl": 500, "clock_ms": self.clock_ms}

    def time(self):
        return {"clock_ms": self.clock_ms}

    def trace(self):
        from pumpsim.hil.rig import RigError
        raise RigError("rig refused 'trace': unknown rig request 'trace'")

    def tones(self):
        return []

    def hello(self):
        return {"rig": "rig_pico"}


class LogOnlyPump:
    def status(self):
        return {"clock_ms": 3 * DAY_MS, "board": "rpi_pico", "fw": "x", "mode": "continuous"}

    def log(self):
        return _events_of_a_run()[:4]


def test_a_rig_without_a_trace_gives_the_days_it_was_read_and_says_so(tmp_path):
    # The harness had the rig's count read at the end of each day, as the demo's loop could.
    recording = report.gather(LogOnlyPump(), TraceLessRig(1500, 3 * DAY_MS), samples=[[DAY_MS, 500], [2 * DAY_MS, 999]])
    assert recording.strokes_ms is None and recording.programme_source == "event log"
    assert "keeps no trace" in recording.notes[0]
    analysis = report.analyse(recording)
    assert [d["strokes"] for d in analysis.days] == [500, 499, 501]
    assert [d["reservoir_nl"] for d in analysis.days] == [19_750_000, 19_500_500, 19_250_000]
    assert not any(h["steady"] for h in analysis.hours)  # no hour's count: no trumpet
    assert all(t["windows"] == 0 for t in analysis.trumpet.values())
    page = report.write_report(tmp_path, recording)
    figs = report.figures(analysis)
    top, _ = figs["hourly"].axes
    assert "no trace" in " ".join(t.get_text() for t in top.texts)
    assert "no observation window" in figs["trumpet"].axes[0].texts[0].get_text()
    s = report.summary(analysis)
    assert (s["pulses"], s["delivered_ul"], s["programmed_ul"], s["trace"]) == (1500, 750.0, 750.0, False)
    assert "keeps no trace of its strokes" in page.read_text()


@pytest.mark.pumpsim_needs("stepped-clock")
def test_pumpsim_report_on_a_virtual_board(bench, tmp_path):
    run_cli(bench, "refill", "--volume-ml", "20", "--concentration-ug-per-ml", "2000")
    run_cli(bench, "program", "continuous", "--daily-dose-ug", "500")
    run_cli(bench, "rig", "advance", "3d")
    out = tmp_path / "out"
    result = json.loads(run_cli(bench, "report", "--out", str(out), "--json").stdout)
    assert result["report"] == str(out / "report.html") and (out / "report.html").exists()
    assert all((out / ("%s.png" % name)).exists() for name in report.FIGURES)
    s = result["summary"]
    measure = bench.raw_rig.measure()
    assert s["programme"] == "event log" and s["trace"] is True
    assert s["pulses"] == measure["pulses"] == 1500 and s["delivered_ul"] == 750.0
    assert s["programmed_ul"] == 750.0 and s["days"] == 3.0
    assert s["trumpet"]["1h"] == {"max_pct": 0.8, "min_pct": -4.0, "windows": 72, "stroke_pct": 4.8}
    with open(out / "report.csv", newline="") as f:
        assert [r["strokes"] for r in csv.DictReader(f)] == ["500", "500", "500"]
    text = (out / "report.html").read_text()
    assert "read from the pump&#x27;s event log" in text
    human = run_cli(bench, "report").stdout  # into the board's own folder
    assert "report     %s" % (bench.dir / "report.html") in human and (bench.dir / "report.csv").exists()
    # Made again from its recording, with no board.
    again = run_cli(bench, "report", "--recording", str(out / report.RECORDING), "--out", str(tmp_path / "again"),
                    "--json")
    assert json.loads(again.stdout)["summary"] == s


def test_pumpsim_report_with_no_board_says_so(tmp_path):
    from pumpsim import cli

    class NoBoard:
        dir = tmp_path

    result = run_cli(NoBoard, "report", ok=False)
    assert result.returncode == 1 and "no virtual board runs in %s" % tmp_path in result.stderr
    assert cli.main(["report", "--recording", str(tmp_path / "none.json")]) == 1


@pytest.mark.pumpsim_needs("stepped-clock", "power-cut")
def test_report_for_replays_what_the_harness_sent(bench, tmp_path):
    programme = report.Programme()
    pump = report.RecordingClient(bench.client(), bench.raw_rig, programme)
    rig = report.RecordingRig(bench.rig, programme)
    pump.config(low_reservoir_ul=1000)
    pump.refill(volume_ul=3000, concentration_ug_per_ml=2000)
    pump.program_flex([(0, 400), (12 * 60, 600)])
    rig.advance(DAY_MS)
    rig.power_cycle()
    bench.wait_for_pump()
    rig.advance(DAY_MS)
    pump = report.RecordingClient(bench.client(), bench.raw_rig, programme)  # a new session after the cut
    pump.bolus(dose_ug=20, minutes=60)
    rig.advance(6 * DAY_MS)  # the low reservoir at day 8, the empty one at day 10
    assert [a["do"] for a in programme] == ["config", "refill", "program", "power-cycle", "bolus"]
    page = report.report_for(pump, bench.raw_rig, tmp_path / "r", programme)
    s = json.loads((page.parent / "summary.json").read_text())
    measure = bench.raw_rig.measure()
    assert s["programme"] == "harness" and s["pulses"] == measure["pulses"]
    # The model's programme and the rig's count agree within a stroke, flex, power cut and bolus.
    assert abs(s["error_ul"]) <= 0.5
    for figures in s["trumpet"].values():
        if figures["windows"]:
            assert -figures["stroke_pct"] < figures["min_pct"] <= figures["max_pct"] < figures["stroke_pct"]
    recording = report.Recording.load(page.parent / report.RECORDING)
    assert recording.strokes_ms == bench.raw_rig.trace()
    assert {"LOW_RESERVOIR"} <= {e["code"] for e in recording.events if e["event"] == "alarm" and e["active"]}
