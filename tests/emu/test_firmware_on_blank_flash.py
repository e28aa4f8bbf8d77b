"""The firmware on a virtual board as on a fresh Pico: deployed onto blank flash, then provisioned,
in the documented order; and resets logged by their real cause on a chip that reports only
power-on and watchdog."""

import shutil

import pytest
import serial

from pumpsim import cli, deploy
from pumpsim.client import PumpClient
from pumpsim.hil.rig import Rig
from pumpsim.targets.emu import supervisor
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE

from .conftest import mpremote, read_for

DAY_MS = 86_400_000


def boots(client):
    return [e for e in client.log() if e["event"] == "boot"]


@pytest.fixture
def blank(tmp_path):
    directory = tmp_path / "board"
    info = supervisor.start(directory, reset_causes="rp2")
    yield info
    supervisor.stop(directory)


def test_deploy_then_provision_from_blank_flash(blank, tmp_path):
    port = blank["port"]
    deploy.deploy(port, "emu", build_dir=deploy.build("emu", out_dir=tmp_path / "build"))
    # No key: the firmware says so and leaves the line to the REPL (Ctrl-D runs main.py again).
    line = serial.serial_for_url(port, timeout=0.05)
    line.write(b"\r\x04")
    out = read_for(line, 1.0)
    line.close()
    assert b"no key is provisioned" in out and b"pumpsim provision" in out, out
    assert out.rstrip().endswith(b">>>"), out
    listing = mpremote(port, "fs", "ls")
    assert listing.returncode == 0 and "main.py" in listing.stdout, listing.stderr

    # The documented order from here: pumpsim keygen, pumpsim provision, then the pump answers.
    key_file = tmp_path / "pico.key"
    assert cli.main(["keygen", str(key_file)]) == 0
    assert cli.main(["provision", "--port", port, "--key", str(key_file)]) == 0
    assert cli.main(["--port", port, "--key", str(key_file), "status", "--json"]) == 0
    key = deploy.read_key(key_file)
    with PumpClient.open(port, key=key, timeout=10) as client:
        status = client.status()
        assert status["board"] == "emu" and status["boots"] == 1
        # Provisioning reset the board on purpose: not logged as a watchdog reset.
        assert status["reset_cause"] == "commanded"
        (boot,) = boots(client)
        # (asked for from the REPL, where the pump's clock does not run: no time to give)
        assert boot["cause"] == "commanded" and "reset_at_ms" not in boot
        client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
        client.program_continuous(daily_dose_ug=500)
    with Rig.open(blank["rig"]) as rig:
        rig.advance(DAY_MS)
        assert rig.measure()["pulses"] == 500


@pytest.fixture
def rp2_board(pumpsim_image, tmp_path):
    flash, key = pumpsim_image
    directory = tmp_path / "board"
    directory.mkdir()
    shutil.copy(flash, directory / FLASH_IMAGE)
    info = supervisor.start(directory, reset_causes="rp2")
    rig = Rig.open(info["rig"])
    client = PumpClient.open(info["port"], key=key, timeout=10)
    yield info, key, client, rig
    client.close()
    rig.close()
    supervisor.stop(directory)


def test_a_genuine_watchdog_reset_still_reads_watchdog(rp2_board):
    info, key, client, rig = rp2_board
    assert client.status()["reset_cause"] == "power-on"
    rig.hang()
    rig.advance(60_000)
    assert boots(client)[-1]["cause"] == "watchdog"
    assert "reset_at_ms" not in boots(client)[-1]


def test_a_commanded_reset_reads_commanded_where_the_chip_says_watchdog(rp2_board):
    info, key, client, rig = rp2_board
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    rig.advance(DAY_MS)
    client.maintenance()
    # What `pumpsim provision` does to a board that runs: the key again, then a reset.
    deploy.provision_key(info["port"], key)
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] >= 999
    client.nonce = None
    last = boots(client)[-1]
    assert last["cause"] == "commanded" and "reset_at_ms" not in last
    assert client.status()["reset_cause"] == "commanded"
