"""The rp2040js target says what is missing, and where to get it, instead of hanging."""

import os
import stat

import pytest

from pumpsim.targets.rp2040js import supervisor as rp2040js


def test_no_firmware_names_where_to_download_it(monkeypatch):
    monkeypatch.delenv("PUMPSIM_RP2_FIRMWARE", raising=False)
    with pytest.raises(rp2040js.TargetError, match="micropython.org"):
        rp2040js.find_firmware()


def test_no_boot_rom_names_the_rp2040js_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("PUMPSIM_RP2_BOOTROM", raising=False)
    with pytest.raises(rp2040js.TargetError, match="rp2040js repository"):
        rp2040js.find_bootrom()
    with pytest.raises(rp2040js.TargetError, match="no boot ROM at"):
        rp2040js.find_bootrom(str(tmp_path / "missing.mjs"))


def test_without_node_modules_it_says_npm_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(rp2040js, "project_root", lambda: tmp_path)
    with pytest.raises(rp2040js.TargetError, match="npm ci"):
        rp2040js.find_rp2040js()


def test_an_old_node_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v16.20.0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    with pytest.raises(rp2040js.TargetError, match="too old"):
        rp2040js.find_node()


def test_the_rig_is_wired_from_the_board_s_csvs():
    wired, info, _ = rp2040js.board_wiring()
    assert wired == {"step": 2, "feedback": 3, "battery_adc": 26, "buzzer": 15}
    assert info["stroke_nl"] == 250
