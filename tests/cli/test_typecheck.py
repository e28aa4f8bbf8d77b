"""`make check`: pyright on firmware/ against the RPI_PICO board's stubs (pumpsim.typecheck)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pumpsim import deploy, typecheck

ROOT = Path(__file__).resolve().parents[2]


def test_the_boardcfg_stand_in_is_what_the_deployer_generates():
    assert (ROOT / typecheck.BOARDCFG_STUB).read_text() == typecheck.boardcfg_stub(), \
        "a board's data changed: python -m pumpsim.typecheck --write"


def test_the_stand_in_has_each_name_of_every_board_s_boardcfg_with_its_type():
    stub = typecheck.boardcfg_stub()
    for board in deploy.boards():
        info, pins = deploy.board_config(board)
        names = typecheck._names(deploy.boardcfg_source(info, pins, "0"))
        for name in names:
            assert "\n%s: " % name in stub, (board, name)
    assert "\nPINS: dict[str, int]\n" in stub and "\nFEATURES: tuple[str, ...]\n" in stub
    assert "\nNAME: str\n" in stub and "\nWDT_MS: int\n" in stub


def test_a_name_only_some_boards_have_is_left_out(monkeypatch):
    sources = {"a": "NAME = 'a'\nWDT_MS = 1\nODD_MS = 2\n", "b": "NAME = 'b'\nWDT_MS = 1\n"}
    monkeypatch.setattr(deploy, "board_config", lambda board: (board, {}))
    monkeypatch.setattr(deploy, "boardcfg_source", lambda info, pins, version: sources[info])
    stub = typecheck.boardcfg_stub(["a", "b"])
    assert "\nNAME: str\nWDT_MS: int\n" in stub
    assert "ODD_MS:" not in stub and "not for the firmware: ODD_MS." in stub


@pytest.fixture(scope="module")
def pyright():
    if shutil.which("node") is None:
        pytest.skip("node is not installed: make check (pyright) needs node >= 18 and npm")
    try:
        return typecheck.pyright_command(ROOT)
    except typecheck.CheckError as exc:
        pytest.fail(str(exc))


def diagnostics(pyright, *files):
    result = subprocess.run(pyright + ["-p", str(ROOT / "firmware"), "--outputjson", *map(str, files)],
                            cwd=ROOT, capture_output=True, text=True, timeout=typecheck.TIMEOUT_S)
    report = json.loads(result.stdout)
    return result.returncode, report["summary"], [
        (Path(d["file"]).name, d["range"]["start"]["line"] + 1, d.get("rule"), d["severity"])
        for d in report["generalDiagnostics"]]


def test_the_firmware_checks_clean_against_the_board(pyright):
    code, summary, found = diagnostics(pyright)
    assert found == [] and summary["errorCount"] == 0, found
    assert summary["filesAnalyzed"] >= len(list((ROOT / "firmware" / "pump").glob("*.py")))
    assert code == 0


def test_the_board_s_stubs_are_what_the_firmware_is_checked_against(pyright, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import time\n"
        "\n"
        "import machine\n"
        "\n"
        "machine.Pin(2, machine.Pin.OUT).toggle()\n"  # 5: the board's Pin has toggle
        "time.sleep_us(20)\n"                         # 6: MicroPython's time, not CPython's
        "machine.Pin(2).blink()\n"                    # 7: no such method on the board
        "import dataclasses\n"                        # 8: CPython has it, the board does not
    )
    code, _, found = diagnostics(pyright, probe)
    assert [(line, rule) for _, line, rule, _ in found] == [
        (7, "reportAttributeAccessIssue"), (8, "reportMissingImports")]
    assert code == 1


def test_the_host_code_still_sees_cpython_not_the_board(pyright, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nimport time\n\ntime.sleep_us(20)\nsys.print_exception\nimport machine\n")
    # From the checkout's root, with its own settings (none): no board stub shadows CPython's.
    result = subprocess.run(pyright + ["--outputjson", str(probe)], cwd=ROOT, capture_output=True, text=True,
                            timeout=typecheck.TIMEOUT_S)
    found = [(d["range"]["start"]["line"] + 1, d.get("rule"))
             for d in json.loads(result.stdout)["generalDiagnostics"] if d["severity"] == "error"]
    assert found == [(4, "reportAttributeAccessIssue"), (5, "reportAttributeAccessIssue"),
                     (6, "reportMissingImports")]


def test_a_stub_ignore_that_is_no_longer_needed_fails_the_check(pyright, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import time\n\ntime.sleep_ms(1)  # pyright: ignore[reportAttributeAccessIssue]\n")
    code, _, found = diagnostics(pyright, probe)
    assert [(line, severity) for _, line, _, severity in found] == [(3, "error")]
    assert code == 1


def test_without_node_make_check_says_what_it_needs_and_fails(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pumpsim.typecheck"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "needs node >= 18 and npm" in result.stderr
