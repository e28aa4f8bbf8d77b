"""An error in a scenario file is reported with the file, its line, what is wrong and the expected
form, and `pumpsim scenario run` exits 2 before any board starts: the folder it was given is not
even made."""

import pytest

from pumpsim import cli
from pumpsim.hil import scenario, scenario_runner

GOOD = '''\
[scenario]
name = "a good file"
needs = ["stepped-clock"]
days = 5

[[step]]
at = "0s"
action = "refill"
volume_ul = 6000
concentration_ug_per_ml = 1000

[[step]]
at = "3d"
action = "expect-alarms"
absent = ["LOW_RESERVOIR"]
'''
REFILL_FORM = "expected volume_ul, concentration_ug_per_ml[, withdrawn_ul][, reminder_days]"
TIME_FORM = 'expected a pump time such as "2d", "6h", "30min", "1d 6h"'

# (what, the file's text, its line, what the message says)
ERRORS = [
    ("unknown key", GOOD.replace("volume_ul = 6000", "volume_ul = 6000\nbatch = 7"), 10,
     ['unknown key "batch" in refill; ' + REFILL_FORM]),
    ("bad unit in a key", GOOD.replace("volume_ul = 6000", "volume_ml = 6"), 9,
     ['unknown key "volume_ml" in refill (volume is in µL: volume_ul); ' + REFILL_FORM]),
    ("bad unit in a time", GOOD.replace('at = "3d"', 'at = "3w"'), 13,
     ['at = "3w": ' + TIME_FORM, '"w" is no unit of pump time']),
    ("bad time", GOOD.replace('at = "3d"', 'at = "3 weeks"'), 13, ['at = "3 weeks": ' + TIME_FORM]),
    ("a fraction of a unit", GOOD.replace('at = "3d"', 'at = "1.5d"'), 13, ['at = "1.5d": ' + TIME_FORM]),
    ("time out of order", GOOD + '\n[[step]]\nat = "2d 12h"\naction = "expect-state"\nstate = "infusing"\n', 18,
     ['at "2d 12h" is before the previous step\'s "3d": steps go in pump-time order']),
    ("unknown action", GOOD.replace('"expect-alarms"', '"expect-alarm"'), 14,
     ['unknown action "expect-alarm"; expected one of "refill", "program", ', '"expect-alarms"']),
    ("missing required key", GOOD.replace("concentration_ug_per_ml = 1000\n", ""), 6,
     ["refill has no concentration_ug_per_ml; " + REFILL_FORM]),
    ("missing at", GOOD.replace('at = "0s"\n', ""), 6, ["step has no at; expected at = " + TIME_FORM[9:]]),
    ("TOML syntax", GOOD.replace('volume_ul = 6000', 'volume_ul = 6000 µL'), 9,
     ["not TOML: ", "(at line 9, column 18)"]),
    ("a float", GOOD.replace("volume_ul = 6000", "volume_ul = 6000.5"), 9,
     ["volume_ul = 6000.5: expected a whole number of µL"]),
    ("an unknown alarm code", GOOD.replace('["LOW_RESERVOIR"]', '["LOW_RESERVOIRS"]'), 15,
     ['"LOW_RESERVOIRS" is no alarm code; the codes are ', "LOW_RESERVOIR,"]),
    ("a variant unknown", GOOD.replace('action = "refill"\nvolume_ul = 6000\nconcentration_ug_per_ml = 1000',
                                       'action = "program"\nmode = "continous"'), 9,
     ['program mode = "continous"; expected mode = "continuous" | "flex" | "minimum-rate" | "stop" | "patient-bolus"']),
    ("a key of another variant", GOOD.replace('action = "refill"\nvolume_ul = 6000\nconcentration_ug_per_ml = 1000',
                                              'action = "program"\nmode = "continuous"\ndose_ug = 500'), 10,
     ['unknown key "dose_ug" in program mode = "continuous"; expected daily_dose_ug']),
    ("a need undeclared", GOOD.replace('action = "refill"\nvolume_ul = 6000\nconcentration_ug_per_ml = 1000',
                                       'action = "battery"\nvoltage_mv = 2800'), 8,
     ['battery needs "battery" of the rig; expected it in [scenario] needs']),
    ("past its days", GOOD.replace('at = "3d"', 'at = "6d"'), 13,
     ['at "6d" is after the scenario\'s end (days = 5); expected at most "5d"']),
    ("a window backwards", GOOD + '\n[[step]]\nat = "4d"\naction = "expect-delivered"\nfrom = "4d 1h"\n', 20,
     ['from "4d 1h" is not before at "4d"; expected a window [from, at] of pump time']),
    ("an unknown scenario key", GOOD.replace("days = 5", "days = 5\nspan_days = 5"), 5,
     ['unknown key "span_days" in [scenario]; expected name, days[, description][, needs]']),
    ("an unknown need", GOOD.replace('["stepped-clock"]', '["stepped-clocks"]'), 3,
     ['needs = ["stepped-clocks"]: expected a list of needs such as ["stepped-clock"] (stepped-clock, reset,']),
    ("no expectation", GOOD[:GOOD.index("[[step]]\nat = \"3d\"")], 6, ["no expectations: "]),
]


@pytest.mark.parametrize("text, line, says", [pytest.param(t, n, s, id=w) for w, t, n, s in ERRORS])
def test_the_error_names_file_line_and_expected_form_and_starts_no_board(tmp_path, capsys, no_board, text, line,
                                                                          says):
    path = tmp_path / "x.toml"
    path.write_text(text)
    board = tmp_path / "board"
    code = cli.main(["scenario", "run", str(path), "--dir", str(board)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("pumpsim: %s:%d: " % (path, line)), err
    for words in says:
        assert words in err, err
    assert not board.exists()


def test_the_good_file_is_good():
    assert [step.action for step in scenario.parse(GOOD, "x.toml").steps] == ["refill", "expect-alarms"]


def test_a_file_that_is_not_there_is_a_usage_error(tmp_path, capsys, no_board):
    assert cli.main(["scenario", "run", str(tmp_path / "none.toml")]) == 2
    assert "none.toml" in capsys.readouterr().err


def test_a_folder_with_files_in_it_is_refused_untouched(tmp_path, capsys, no_board):
    path = tmp_path / "x.toml"
    path.write_text(GOOD)
    board = tmp_path / "board"
    board.mkdir()
    (board / "notes.txt").write_text("mine")
    assert cli.main(["scenario", "run", str(path), "--dir", str(board)]) == 2
    assert "not a new or empty folder" in capsys.readouterr().err
    assert [p.name for p in board.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("target", ["rp2040js", "bench"])
def test_a_target_that_cannot_do_what_the_scenario_needs_is_refused_before_it_starts(tmp_path, capsys, no_board,
                                                                                     target):
    path = tmp_path / "x.toml"
    path.write_text(GOOD)
    assert cli.main(["scenario", "run", str(path), "--target", target, "--dir", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == (
        "pumpsim: %s needs stepped-clock, which the %s target cannot do (its board rpi_pico has no virtual_clock "
        "in board.json)" % (path, target))
    assert not (tmp_path / "b").exists()


def test_a_rig_that_cannot_do_what_the_scenario_needs_is_named_with_what_it_lacks():
    found = scenario.parse(GOOD.replace('["stepped-clock"]', '["stepped-clock", "battery", "tones"]'), "x.toml")
    assert scenario_runner.missing_needs(found, ["stepped-clock", "tones", "reset"]) == ["battery"]
    assert scenario_runner.missing_needs(found, ["stepped-clock", "battery", "tones"]) == []
