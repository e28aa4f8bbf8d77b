"""The rig Pico as a board: its pins by rig signal, the same files that describe the pump's
wiring, its build, and docs/bench.md's wiring table generated from them."""

import json
import re
from pathlib import Path

import pytest

from pumpsim import deploy, wiring

ROOT = Path(__file__).resolve().parents[2]


def test_every_rig_signal_of_the_wiring_has_a_rig_pin_and_the_rig_uses_exactly_them():
    joined = wiring.bench()
    signals = {signal for signal, *_ in joined}
    rig_pins = wiring.pins("rig_pico")
    assert signals - {"ground"} <= set(rig_pins)
    used = set(re.findall(r'pins\["(\w+)"\]', (ROOT / "firmware" / "rig" / "hw.py").read_text()))
    assert used == set(rig_pins)
    assert len(set(rig_pins.values())) == len(rig_pins)  # no pin twice


def test_a_wiring_row_whose_signal_the_rig_lacks_is_refused(tmp_path, monkeypatch):
    for board in ("rpi_pico", "rig_pico"):
        (tmp_path / board).mkdir()
        (tmp_path / board / "pins.csv").write_text((wiring.BOARDS / board / "pins.csv").read_text())
    (tmp_path / "rpi_pico" / "wiring.csv").write_text("rig_signal,board_role,note\nthermometer,MOTOR_STEP,x\n")
    monkeypatch.setattr(wiring, "BOARDS", tmp_path)
    with pytest.raises(ValueError, match="thermometer"):
        wiring.bench()


def test_the_wiring_table_in_the_docs_is_the_generated_one():
    doc = (ROOT / "docs" / "bench.md").read_text()
    table = doc.split("<!-- wiring: generated -->\n", 1)[1].split("<!-- /wiring -->", 1)[0]
    assert table == wiring.markdown()


def test_the_rig_board_builds_the_rig_program_and_is_no_pump_board(tmp_path):
    assert "rig_pico" not in deploy.boards() and "rig_pico" in deploy.boards(None)
    out = deploy.build("rig_pico", out_dir=tmp_path / "rig")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["boardcfg.mpy", "main.py", "rig/__init__.mpy", "rig/app.mpy", "rig/core.mpy", "rig/hw.mpy"]
    assert "app.run(Hardware(" in (out / "main.py").read_text()
    source = deploy.boardcfg_source(*deploy.board_config("rig_pico"), "0")
    assert "'pulse_counter': 2" in source and "STROKE_NL = 250" in source
    info = json.loads((wiring.BOARDS / "rig_pico" / "board.json").read_text())
    assert info["stroke_nl"] == json.loads((wiring.BOARDS / info["dut"] / "board.json").read_text())["stroke_nl"]
    pump = deploy.build("rpi_pico", out_dir=tmp_path / "pump")
    assert (pump / "boot.py").exists() and not (pump / "rig").exists()


def test_the_drawing_is_the_generated_one_with_a_wire_per_row():
    drawn = (ROOT / "docs" / "bench-wiring.svg").read_text()
    assert drawn == wiring.svg()
    rows = wiring.bench()
    assert drawn.count("<line ") == len(rows) and drawn.count("<circle ") == 2 * len(rows)
    for signal, rig_pin, role, _dut_pin, via, _note in rows:
        assert signal in drawn and role in drawn and (not via or via in drawn)
