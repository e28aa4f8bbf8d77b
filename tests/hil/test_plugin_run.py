"""The plugin as a user's suite meets it: a folder of tests of its own, run by pytest in a
process of its own (the plugin comes from the pytest11 entry point), in parallel with xdist."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import pumpsim
from pumpsim.targets.emu import unixport

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
FIRST_EXAMPLE = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)

MORE_TESTS = '''

@pytest.mark.pumpsim_needs("stepped-clock")
@pytest.mark.pumpsim_days(2)
def test_two_days_and_their_report(pump, bench, tmp_path):
    pump.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    pump.program_continuous(daily_dose_ug=500)
    bench.advance_days(2)
    bench.report(tmp_path / "report")

def test_fails_with_its_evidence(pump, rig):
    pump.refill(volume_ul=1000, concentration_ug_per_ml=2000)
    rig.measure()
    assert False, "failed on purpose"


@pytest.mark.pumpsim_needs("stepped-clock")
@pytest.mark.pumpsim_days(1)
def test_moves_one_ms_past_its_days(bench):
    bench.advance_days(1)
    bench.wait_ms(1)
'''


def pytest_run(folder, *args, timeout_s=300):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-rA", *args], cwd=folder, capture_output=True, text=True, timeout=timeout_s)


def properties(junit, name):
    (case,) = [c for c in ElementTree.parse(junit).iter("testcase") if c.get("name") == name]
    return {p.get("name"): p.get("value") for p in case.iter("property")}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    (folder / "test_user.py").write_text(FIRST_EXAMPLE + MORE_TESTS)
    (folder / "pytest.ini").write_text("[pytest]\npumpsim_board = emu\n")
    result = pytest_run(folder, "-n", "2", "--junitxml=junit.xml", "test_user.py")
    return folder, result, result.stdout + result.stderr


def test_the_header_names_target_board_firmware_and_micropython(suite):
    _, _, out = suite
    mpy = unixport.interpreter_version(unixport.find_micropython())
    assert re.search(r"^pumpsim: target emu, board emu, firmware %s, MicroPython %s, commit \S+$"
                     % (re.escape(pumpsim.__version__), re.escape(mpy)), out, re.M), out


def test_the_doc_s_first_test_passes_in_a_suite_of_its_own(suite):
    _, _, out = suite
    assert re.search(r"PASSED test_user.py::test_a_minute_of_1200_ug_a_day", out), out


def test_junit_carries_the_run_s_properties(suite):
    folder, _, out = suite
    props = properties(folder / "junit.xml", "test_a_minute_of_1200_ug_a_day")
    assert set(documented_properties()) - {name for name in props} == REPORT_PROPERTIES, out
    assert {name for name in props} <= set(documented_properties())
    assert (props["pumpsim_target"], props["pumpsim_board"], props["firmware_version"]) == (
        "emu", "emu", pumpsim.__version__)
    assert props["micropython_version"] == unixport.interpreter_version(unixport.find_micropython())
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?|unknown", props["git_commit"])
    # A minute of 24 mL/day in strokes of 500 nL is 33 strokes, give or take the one in progress.
    assert 32 <= int(props["rig_pulses"]) <= 34
    assert abs(float(props["delivery_error_worst_ul"])) <= 0.5
    assert abs(float(props["delivery_error_worst_pct"])) <= 0.5 * 100 / (24_000 / 1440)


REPORT_PROPERTIES = {"pumpsim_report", "report_worst_hourly_error_ul", "report_worst_hourly_error_pct"}


def test_junit_names_a_test_s_report_and_its_worst_hour(suite):
    folder, _, out = suite
    props = properties(folder / "junit.xml", "test_two_days_and_their_report")
    assert REPORT_PROPERTIES <= set(props), out
    page = Path(props["pumpsim_report"])
    assert page.name == "report.html" and page.is_file() and (page.parent / "cumulative.png").is_file()
    # Two days of 500 µg/day at 2000 µg/mL in 500 nL strokes: about 20.8 strokes an hour, so an
    # hour is off by less than one stroke.
    assert abs(float(props["report_worst_hourly_error_ul"])) < 0.5
    assert abs(float(props["report_worst_hourly_error_pct"])) < 0.5 * 100 / (250 / 24)


def documented_properties():
    section = DOC.read_text().split("## What the report carries", 1)[1]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.M)


def test_a_failed_test_carries_its_board_s_evidence(suite):
    folder, _, out = suite
    assert "failed on purpose" in out
    for name in ("board log emu.log", "pump event log", "rig trace"):
        assert "pumpsim: %s (last" % name in out, name
    props = properties(folder / "junit.xml", "test_fails_with_its_evidence")
    attachments = {name[len("attachment "):]: Path(value) for name, value in props.items()
                   if name.startswith("attachment ")}
    assert set(attachments) == {"board log emu.log", "pump event log", "rig trace"}
    events = attachments["pump event log"].read_text()
    assert '"event": "boot"' in events and '"event": "refill"' in events
    trace = attachments["rig trace"].read_text()
    assert re.search(r"^client -> .*refill", trace, re.M) and re.search(r"^rig -> measure$", trace, re.M)
    assert "rig at the failure: {" in trace
    # A test that passed leaves no evidence behind.
    passed = properties(folder / "junit.xml", "test_a_minute_of_1200_ug_a_day")
    assert not [name for name in passed if name.startswith("attachment")]


def test_pump_time_may_reach_its_declared_days_and_not_one_ms_more(suite):
    _, _, out = suite
    assert re.search(r"moves pump time by 1\.000000012 days \(86400001 ms\), beyond its pumpsim_days\(1\)", out), out
    assert "FAILED test_user.py::test_moves_one_ms_past_its_days" in out


def test_only_the_two_meant_to_fail_fail(suite):
    _, result, out = suite
    assert re.search(r"2 failed, 2 passed", out), out
    assert result.returncode == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("ini, args, said", [
    ("pumpsim_board = rpi_pico", (), "--pumpsim-target emu runs the emu board, not rpi_pico"),
    ("pumpsim_board = nano", (), "pumpsim_board 'nano': one of"),
    ("pumpsim_target = qemu", (), "pumpsim_target 'qemu': one of emu, rp2040js, bench"),
    ("pumpsim_board = rpi_pico", ("--pumpsim-board", "nano"), "pumpsim_board 'nano'"),
])
def test_a_setting_the_run_cannot_use_is_a_usage_error(tmp_path, ini, args, said):
    (tmp_path / "pytest.ini").write_text("[pytest]\n%s\n" % ini)
    (tmp_path / "test_nothing.py").write_text("def test_nothing(bench):\n    pass\n")
    result = pytest_run(tmp_path, *args, timeout_s=60)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert said in result.stderr


def test_the_command_line_overrides_the_ini_settings(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\npumpsim_target = rp2040js\n")
    result = pytest_run(tmp_path, "--collect-only", timeout_s=60)
    assert "pumpsim: target rp2040js, board rpi_pico," in result.stdout, result.stdout + result.stderr
    result = pytest_run(tmp_path, "--collect-only", "--pumpsim-target", "emu", timeout_s=60)
    assert "pumpsim: target emu, board emu," in result.stdout, result.stdout + result.stderr
