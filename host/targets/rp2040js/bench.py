"""The bench target: the two Picos of docs/bench.md in one rp2040js process, wired to each other as
boards/rpi_pico/wiring.csv says.

The DUT runs the pump firmware (DIR: flash.bin, fram.bin, host.key, its port DIR/ttyACM0); the rig
Pico runs official MicroPython with boards/rig_pico deployed (DIR/rig/flash.bin, its port
DIR/ttyACM1), and it is the rig: it counts the DUT's strokes with its PIO, answers them on
MOTOR_FEEDBACK, sets the battery voltage through PWM and the RC filter, hears the buzzer, and
switches the DUT's power and RUN pin. The DUT stays off until the rig's main.py turns its load
switch on. The rp2040js target's built-in rig stays on the DUT's pins as an observer only
(`observer` in emu.json), so that a test can compare what the rig Pico measured with it.

    python -m pumpsim.targets.rp2040js.bench --dir DIR [--firmware UF2] [--bootrom MJS]

Library use: start(dir) returns what emu.json holds ({port: the DUT's, rig: the rig Pico's,
observer, ...}); make_rig_image(dir) deploys the rig firmware onto a blank emulated Pico once.
"""

import argparse
import csv
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pumpsim.boards.rig_pico

from ..emu.rigserver import RigError
from ..process import info, launch, serve_in_background
from . import supervisor as rp2040js
from .supervisor import BOARD, HostPort, Rp2RigServer, Supervisor, TargetError

RIG_BOARD = Path(pumpsim.boards.rig_pico.__file__).resolve().parent
RIG_DIR = "rig"          # DIR/rig: the rig Pico's flash
RIG_LINK = "ttyACM1"     # DIR/ttyACM1: the rig Pico's USB serial port, a link to its pty
# The PWM's high level: the rig Pico's 3.3 V rail.
PICO_RAIL_MV = 3300
# What each rig signal of wiring.csv is: a digital line the DUT drives (the rig reads it), one the
# rig drives, the DUT's supply, its RUN pin, or the battery DAC's filtered PWM.
_RIG_READS = ("pulse_counter", "microphone")
_RIG_DRIVES = ("feedback_drive",)


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def bench_wiring(dut_dir=BOARD, rig_dir=RIG_BOARD):
    """The wires of the bench for pico.mjs, from wiring.csv and both boards' pins.csv; a row this
    does not know is an error, so that the emulated bench is never wired otherwise than the real."""
    dut_pins = {row["role"]: int(row["pin"]) for row in _csv(dut_dir / "pins.csv")}
    rig_pins = {row["role"]: int(row["pin"]) for row in _csv(rig_dir / "pins.csv")}
    dut_info = json.loads((dut_dir / "board.json").read_text())
    wires = []
    for row in _csv(dut_dir / "wiring.csv"):
        signal, role, via = row["rig_signal"], row["board_role"], row["via"]
        if signal == "ground":
            continue
        if signal not in rig_pins:
            raise TargetError("wiring.csv: rig signal %r is not in %s" % (signal, rig_dir / "pins.csv"))
        rig_pin = rig_pins[signal]
        if signal in _RIG_READS:
            wires.append({"kind": "wire", "from": "dut", "from_pin": dut_pins[role], "to": "rig", "to_pin": rig_pin})
        elif signal in _RIG_DRIVES:
            wires.append({"kind": "wire", "from": "rig", "from_pin": rig_pin, "to": "dut", "to_pin": dut_pins[role]})
        elif signal == "power_switch":
            wires.append({"kind": "power", "from": "rig", "from_pin": rig_pin, "to": "dut"})
        elif signal == "dut_run":
            wires.append({"kind": "run", "from": "rig", "from_pin": rig_pin, "to": "dut"})
        elif signal == "battery_dac":
            rc = re.search(r"RC (\d+(?:\.\d+)?) kΩ · (\d+(?:\.\d+)?) µF", via)
            divider = re.search(r"1:(\d+) divider", via)
            if not (rc and divider):
                raise TargetError("wiring.csv: battery_dac's via %r: expected 'RC R kΩ · C µF then 1:N divider'" % via)
            wires.append({"kind": "rc_adc", "from": "rig", "from_pin": rig_pin, "to": "dut",
                          "channel": dut_pins[role] - 26,
                          "tau_ms": float(rc.group(1)) * float(rc.group(2)),  # kΩ × µF = ms
                          "divider": int(divider.group(1)), "high_mv": PICO_RAIL_MV,
                          "adc_full_scale_mv": dut_info["battery_adc_full_scale_mv"]})
        else:
            raise TargetError("wiring.csv: the emulated bench does not know rig signal %r" % signal)
    return wires


class ObserverRigServer(Rp2RigServer):
    """The rp2040js target's rig left on the DUT's pins as an observer: it counts the strokes
    and hears the tones the rig Pico sees, to compare with it; it changes nothing."""

    CAN = ()

    def hello(self, conn, arg):
        return {"rig": "rp2040js-observer", "proto": 1, "clock": "realtime", "board": "rpi_pico", "can": []}

    def _refuse(self, conn, arg):
        raise RigError("this is the bench's observer, which only measures: the bench's rig is the rig "
                       "Pico (`rig` in emu.json)")

    reset = power_cycle = battery = stall = hang = corrupt_flash = rtc = _refuse


class BenchSupervisor(Supervisor):
    rig_server = ObserverRigServer

    def __init__(self, directory, firmware, bootrom, node, rp2040js_entry):
        self.rig_dir = Path(directory).resolve() / RIG_DIR
        self.rig_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(directory, firmware, bootrom, node, rp2040js_entry)

    def boards(self, dut, firmware):
        self.rig_host = HostPort(self, b"E")
        self.ports[b"E"] = self.rig_host
        rig = {"name": "rig", "frame": "E", "dir": str(self.rig_dir), "firmware": firmware}
        dut = dict(dut, rig="observe", powered_by="rig")
        return {"boards": [dut, rig], "wiring": bench_wiring()}

    def link_rig_port(self):
        link = self.dir / RIG_LINK
        tmp = self.dir / (RIG_LINK + ".tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(self.rig_host.path, tmp)
        os.replace(tmp, link)
        return link

    def shutdown(self):
        super().shutdown()
        (self.dir / RIG_LINK).unlink(missing_ok=True)


def start(directory, firmware=None, bootrom=None, timeout_s=120.0):
    """Boot the emulated bench in DIR in the background; returns emu.json's content. DIR needs the
    DUT's flash.bin (or none: a blank Pico) and rig/flash.bin with the rig firmware deployed."""
    directory = Path(directory).resolve()
    running = info(directory)
    if running:
        raise TargetError("a board already runs in %s (pid %d)" % (directory, running["pid"]))
    rp2040js.find_node(), rp2040js.find_rp2040js()
    firmware, bootrom = rp2040js.find_firmware(firmware), rp2040js.find_bootrom(bootrom)
    if not (directory / RIG_DIR / "flash.bin").is_file():
        raise TargetError("no rig Pico in %s: %s/flash.bin holds its flash with boards/rig_pico deployed "
                          "(pumpsim emu start --target bench makes one)" % (directory, RIG_DIR))
    started = launch(directory, "pumpsim.targets.rp2040js.bench", ["--firmware", firmware, "--bootrom", bootrom],
                     "the emulated bench", TargetError, timeout_s)
    try:
        wait_for_rig(started["rig"], timeout_s)
    except TargetError:
        from pumpsim.targets.process import stop

        stop(directory)
        raise
    return started


def wait_for_rig(port, timeout_s):
    """Until the rig firmware answers hello on port (its main.py starts a while after power-up;
    what the REPL said before then is not an answer)."""
    from pumpsim.hil.rig import Rig
    from pumpsim.hil.rig import RigError as NoAnswer

    deadline = time.monotonic() + timeout_s
    with Rig.open(port, timeout_s=5.0) as rig:
        while True:
            try:
                if rig.hello().get("rig") == "rig_pico":
                    break
            except NoAnswer:
                pass
            if time.monotonic() > deadline:
                raise TargetError("the rig firmware did not answer hello on %s within %.0f s" % (port, timeout_s))
        # A hello that timed out may still be answered: its reply is not left for the next reader.
        rig.drain(quiet_s=2.0)


def make_rig_image(directory, firmware=None, timeout_s=300.0):
    """A blank emulated Pico given the rig firmware by mpremote (`pumpsim deploy --board
    rig_pico`), as the bench's second Pico is: DIR/flash.bin, for benches to start from copies of."""
    from pumpsim import deploy
    from pumpsim.targets.process import stop

    directory = Path(directory)
    started = rp2040js.start(directory, firmware=firmware, fram=False)
    try:
        deploy.deploy(started["port"], "rig_pico", build_dir=deploy.build("rig_pico", out_dir=directory / "build"))
        wait_for_rig(started["port"], timeout_s)
    finally:
        stop(directory)
    # Only the flash is the rig Pico's: the rest was the one-Pico target's, which deployed it.
    for name in ("emu.json", "rig.json", "emu.log"):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "build", ignore_errors=True)
    return directory / "flash.bin"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--firmware")
    parser.add_argument("--bootrom")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        firmware, bootrom = rp2040js.find_firmware(args.firmware), rp2040js.find_bootrom(args.bootrom)
        sup = BenchSupervisor(args.dir, firmware, bootrom, rp2040js.find_node(), rp2040js.find_rp2040js())
    except TargetError as exc:
        logging.getLogger("pumpsim.bench").error("%s", exc)
        return 1

    def ready():
        if not sup.wait_ready():
            logging.getLogger("pumpsim.bench").error("the emulator did not come up (exit status %s)", sup.node.poll())
            return False
        announce["rig"] = str(sup.link_rig_port())
        return True

    announce = {"board": "rpi_pico", "target": "bench", "firmware": firmware,
                "rig_pty": sup.rig_host.path, "observer": "socket://127.0.0.1:%d" % sup.rig.port}
    return serve_in_background(sup, announce, ready)


if __name__ == "__main__":
    sys.exit(main())
