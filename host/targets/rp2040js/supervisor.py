"""The rp2040js target: official MicroPython for the Raspberry Pi Pico on an emulated RP2040.

Beside the emu target (the unix port in a virtual board), this one runs the very firmware a Pico
runs, in the rp2040js emulator under node (pico.mjs), wired to the rig as boards/rpi_pico says.
The supervisor owns a raw pty that pyserial and mpremote open like the Pico's USB serial port,
relays it to the emulated USB CDC, and serves the rig protocol; node owns the chip, its flash
(DIR/flash.bin) and the rig's counters (DIR/rig.json).

    python -m pumpsim.targets.rp2040js.supervisor --dir DIR [--firmware UF2] [--bootrom MJS]

The firmware comes from --firmware or PUMPSIM_RP2_FIRMWARE (RPI_PICO-v1.28.0.uf2 from
micropython.org), the RP2040 boot ROM from --bootrom or PUMPSIM_RP2_BOOTROM (the rp2040js
repository's demo/bootrom.ts as an ES module exporting `bootromB1`).

Library use: start(dir, firmware) spawns it in the background and returns what emu.json holds;
stop(dir) (the emu target's) ends it.
"""

import argparse
import csv
import json
import logging
import os
import random
import re
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import time
import tty
from pathlib import Path

import pumpsim.boards.rpi_pico
from pumpsim.errors import PumpsimError

from .. import fram
from ..emu.rigserver import TRACE_PAGE, RigError, RigServer, parse_from, parse_stall
from ..emu.tones import Tones
from ..process import info, launch, serve_in_background

HERE = Path(__file__).resolve().parent
BOARD = Path(pumpsim.boards.rpi_pico.__file__).resolve().parent
NODE_MIN_MAJOR = 18
# The rig's DAC starts at a fresh lithium cell's voltage, as the virtual board's battery does.
BATTERY_START_MV = 3200
_FRAME = struct.Struct("<cI")
_OUT_LIMIT = 1 << 16
_READY_TIMEOUT_S = 60.0

FIRMWARE_HELP = ("the rp2040js target runs official MicroPython: download RPI_PICO-v1.28.0.uf2 from "
                 "micropython.org/download/RPI_PICO and give it with --firmware or PUMPSIM_RP2_FIRMWARE")
BOOTROM_HELP = ("the rp2040js target needs the RP2040 boot ROM, which the npm package does not ship: "
                "take demo/bootrom.ts (export bootromB1) from the rp2040js repository on GitHub, save it "
                "as an ES module (.mjs) and give it with PUMPSIM_RP2_BOOTROM")

log = logging.getLogger("pumpsim.rp2040js")


class TargetError(PumpsimError):
    """The rp2040js target cannot start: what is missing and where to get it."""


# -- what it needs ---------------------------------------------------------------------------------


def project_root():
    """The checkout holding package.json and node_modules (an editable install maps it in place)."""
    return HERE.parents[2]


def find_node():
    node = shutil.which("node")
    if node is None:
        raise TargetError("node not found: the rp2040js target needs node >= %d (and npm ci in %s)"
                          % (NODE_MIN_MAJOR, project_root()))
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetError("cannot run %s --version: %s" % (node, exc)) from None
    match = re.match(r"v(\d+)\.", version.strip())
    if not match or int(match.group(1)) < NODE_MIN_MAJOR:
        raise TargetError("node %s is too old: the rp2040js target needs node >= %d"
                          % (version.strip() or "(no version)", NODE_MIN_MAJOR))
    return node


def find_rp2040js():
    entry = project_root() / "node_modules" / "rp2040js" / "dist" / "esm" / "index.js"
    if not entry.exists():
        raise TargetError("the npm package rp2040js is not installed: run `npm ci` in %s "
                          "(make .venv/bin/.installed does it)" % project_root())
    return entry


def find_firmware(firmware=None):
    path = firmware or os.environ.get("PUMPSIM_RP2_FIRMWARE")
    if not path:
        raise TargetError(FIRMWARE_HELP)
    if not Path(path).is_file():
        raise TargetError("no firmware at %s: %s" % (path, FIRMWARE_HELP))
    return str(Path(path).resolve())


_UF2_BLOCK_BYTES = 512
_UF2_MAGIC = (0x0A324655, 0x9E5D5157)


def firmware_version(uf2_path):
    """The MicroPython version a UF2 image holds ("1.28.0", from its banner), or ""."""
    import re
    import struct

    data = Path(uf2_path).read_bytes()
    payload = bytearray()
    for offset in range(0, len(data) - _UF2_BLOCK_BYTES + 1, _UF2_BLOCK_BYTES):
        magic0, magic1, _flags, _address, size = struct.unpack_from("<5I", data, offset)
        if (magic0, magic1) == _UF2_MAGIC:
            payload += data[offset + 32:offset + 32 + min(size, 476)]
    found = re.search(rb"MicroPython v(\d+\.\d+\.\d+)", payload)
    return found.group(1).decode() if found else ""


def find_bootrom(bootrom=None):
    path = bootrom or os.environ.get("PUMPSIM_RP2_BOOTROM")
    if not path:
        raise TargetError(BOOTROM_HELP)
    if not Path(path).is_file():
        raise TargetError("no boot ROM at %s: %s" % (path, BOOTROM_HELP))
    return str(Path(path).resolve())


def board_wiring(board_dir=BOARD):
    """The pins the rig is wired to, from pins.csv through wiring.csv, and the board's data."""
    with open(board_dir / "pins.csv", newline="") as f:
        pins = {row["role"]: int(row["pin"]) for row in csv.DictReader(f)}
    with open(board_dir / "wiring.csv", newline="") as f:
        wiring = {row["rig_signal"]: row["board_role"] for row in csv.DictReader(f)}
    info_ = json.loads((board_dir / "board.json").read_text())
    wired = {
        "step": pins[wiring["pulse_counter"]],
        "feedback": pins[wiring["feedback_drive"]],
        "battery_adc": pins[wiring["battery_dac"]],
        "buzzer": pins[wiring["microphone"]],
    }
    return wired, info_, pins


# -- the rig protocol -------------------------------------------------------------------------------


class Rp2RigServer(RigServer):
    """The rig protocol of docs/protocol.md for the emulated Pico: what the rig measures comes
    from the emulator's pins; what silicon cannot do is refused with the reason."""

    # What this rig can do to the chip, by the names tests declare with pumpsim_needs. A write
    # to the FRAM is seen on its pins, so the power can go in the middle of one, and its cells
    # can fail; the flash's are inside the chip.
    CAN = ("reset", "power-cut", "power-cut-mid-write", "motor-stall", "battery", "tones", "corrupt-flash",
           "boot-count")

    def hello(self, conn, arg):
        return {"rig": "rp2040js", "proto": 1, "clock": "realtime", "board": "rpi_pico", "can": list(self.CAN)}

    def _ask(self, conn, request, shape):
        def done(state):
            self._send(conn, {"error": state["error"]} if "error" in state else shape(state))
        self.sup.node_request(request, done)

    def measure(self, conn, arg):
        stroke_nl = self.sup.stroke_nl

        def shape(s):
            delivered_nl = s["pulses"] * stroke_nl
            return {"pulses": s["pulses"], "stroke_nl": stroke_nl, "delivered_nl": delivered_nl,
                    "delivered_ul": delivered_nl / 1000, "clock_ms": s["clock_ms"],
                    "power_cuts": s["power_cuts"], "boots": s["boots"], "resets": s["resets"],
                    "step_edges": s["edges"], "flash_erases": s["flash_erases"],
                    "flash_programs": s["flash_programs"], "fram_writes": s["fram_writes"],
                    "fram_written_bytes": s["fram_written_bytes"],
                    "last_pulse_ms": s["last_pulse_ms"], "last_failed_ms": s["last_failed_ms"]}
        self._ask(conn, {"cmd": "state"}, shape)

    def time(self, conn, arg):
        self._ask(conn, {"cmd": "state"}, lambda s: {"clock_ms": s["clock_ms"], "clock": "realtime"})

    def advance(self, conn, arg):
        raise RigError("advance: the rp2040js target runs in real time, as silicon does: pump time "
                       "cannot be moved on, only waited for (the emu target has a stepped clock)")

    def set_clock(self, conn, arg):
        if arg != "realtime":
            raise RigError("clock %s: the rp2040js target's clock is the emulated RP2040's, which runs "
                           "in real time like silicon; only `clock realtime` holds" % arg)
        return self.time(conn, arg)

    def reset(self, conn, arg):
        self._ask(conn, {"cmd": "reset"}, lambda s: {"reset": "hard", "clock_ms": s["clock_ms"]})

    def power_cycle(self, conn, arg):
        if arg:
            if not arg.isdigit() or int(arg) < 1:
                raise RigError("power-cycle takes the number of the FRAM write to cut at (1 = next), not %r" % arg)
            # The N-th write to the FRAM from now, as its pins show it (the flash's are not seen).
            self._ask(conn, {"cmd": "power-cycle", "at_write": int(arg)},
                      lambda s: {"power": "armed", "at_write": int(arg), "clock_ms": s["clock_ms"]})
            return None
        self._ask(conn, {"cmd": "power-cycle"}, lambda s: {"power": "cycled", "clock_ms": s["clock_ms"]})

    def battery(self, conn, arg):
        request = {"cmd": "battery"}
        if arg:
            if not arg.isdigit() or not 0 < int(arg) <= 5000:
                raise RigError("battery takes millivolts, 1 to 5000, not %r" % arg)
            request["mv"] = int(arg)
        self._ask(conn, request, lambda s: {"battery_mv": s["battery_mv"]})

    def stall(self, conn, arg):
        mode, fail_next = parse_stall(arg)
        if mode == "next":
            self._ask(conn, {"cmd": "stall", "mode": "next", "n": fail_next},
                      lambda s: {"stall": "next", "fail_next": fail_next})
        else:
            self._ask(conn, {"cmd": "stall", "mode": mode}, lambda s: {"stall": mode})
        return None

    def tones(self, conn, arg):
        return {"tones": self.sup.tones.listing()}

    def rtc(self, conn, arg):
        """The emulated RP2040's RTC is the chip's own: it restarts at every power-up and reset,
        as silicon's does, and no rig can keep it."""
        if arg not in ("", "volatile"):
            raise RigError("rtc %s: the rp2040js target's RTC is the emulated RP2040's own, which restarts at "
                           "every power-up and reset (volatile); the rig cannot keep it (the emu target can)" % arg)
        self._ask(conn, {"cmd": "state"}, lambda s: {"rtc": "volatile", "clock_ms": s["clock_ms"]})

    def trace(self, conn, arg):
        self._ask(conn, {"cmd": "trace", "from": parse_from(arg), "count": TRACE_PAGE},
                  lambda s: {"from": s["from"], "strokes_ms": s["strokes_ms"], "total": s["total"],
                             "untimed": s["untimed"]})

    def hang(self, conn, arg):
        raise RigError("hang: the rp2040js target runs the firmware unchanged on an emulated chip, "
                       "which has no way to stop its main loop from outside (the emu target can)")

    def corrupt_flash(self, conn, arg):
        """Bits of the FRAM's records flipped, as a failing cell would (the records are on the
        FRAM; the flash holds a littlefs image of code and keys)."""
        try:
            image = (self.sup.dir / "fram.bin").read_bytes()
        except OSError:
            raise RigError("corrupt-flash: the board has not started its FRAM yet") from None
        try:
            hit, chosen = fram.flips(image, arg or "state", self.sup.random)
        except ValueError as exc:
            raise RigError(str(exc)) from None
        self._ask(conn, {"cmd": "fram-flip", "flips": chosen}, lambda s: {"corrupted": hit})


class HostPort:
    """A board's USB serial port as the host sees it: a raw pty that pyserial and mpremote open
    like a Pico's, relayed to and from the board's USB CDC in node (frames of type `kind`)."""

    def __init__(self, sup, kind):
        self.sup, self.kind = sup, kind
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # raw: no echo, no ISIG (0x03 is data), no line editing
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.buf = bytearray()
        self.events = 0

    def to_host(self, data):
        self.buf += data
        if len(self.buf) > _OUT_LIMIT:
            # Nobody reads the port: keep the newest output, as a USB host that is not
            # listening loses what the board printed.
            del self.buf[: len(self.buf) - _OUT_LIMIT]
        self._flush()

    def _flush(self):
        if self.buf:
            try:
                written = os.write(self.master, self.buf)
                del self.buf[:written]
            except BlockingIOError:
                pass
            except OSError:
                self.buf.clear()
        self.update()

    def update(self):
        # Read the host only while node keeps up: a USB device holds the host back.
        events = selectors.EVENT_WRITE if self.buf else 0
        if len(self.sup.node_out) < _OUT_LIMIT:
            events |= selectors.EVENT_READ
        if events != self.events:
            if self.events and events:
                self.sup.sel.modify(self.master, events, self._from_host)
            elif events:
                self.sup.sel.register(self.master, events, self._from_host)
            else:
                self.sup.sel.unregister(self.master)
            self.events = events

    def _from_host(self, mask):
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return
        if data:
            self.sup._send_node(self.kind, data)
        self.update()


# -- the supervisor -----------------------------------------------------------------------------------


class Supervisor:
    rig_server = Rp2RigServer  # the rig protocol on a socket, for the board's built-in rig

    def __init__(self, directory, firmware, bootrom, node, rp2040js, fram=True):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pins, self.board_info, self.board_pins = board_wiring()
        self.stroke_nl = self.board_info["stroke_nl"]
        self.fram = None  # the FRAM beside the chip: boards/rpi_pico board.json and pins FRAM_*
        if fram and self.board_info.get("fram_bytes"):
            self.fram = {"spi": self.board_info["fram_spi"], "cs": self.board_pins["FRAM_CS"],
                         "bytes": self.board_info["fram_bytes"]}
        self.random = random.Random()
        self.tones = Tones()
        self.sel = selectors.DefaultSelector()
        self.host = HostPort(self, b"D")
        self.port = self.host.path
        self.ports = {b"D": self.host}  # each board's USB CDC by its frame type
        self.node_sock, child = socket.socketpair()
        self.node_sock.setblocking(False)
        self.node_in = b""
        self.node_out = bytearray()
        self.node_events = 0
        self.pending = {}
        self.next_id = 1
        self.ready = False
        self.running = True
        dut = {
            "name": "dut", "frame": "D", "dir": str(self.dir), "firmware": firmware, "pins": self.pins,
            "rig": "drive", "battery_mv": BATTERY_START_MV,
            "battery_divider": self.board_info["battery_divider"],
            "battery_adc_full_scale_mv": self.board_info["battery_adc_full_scale_mv"],
            "fram": self.fram,
        }
        config = {"bootrom": bootrom, "rp2040js": str(rp2040js), "fd": child.fileno(),
                  **self.boards(dut, firmware)}
        self.node = subprocess.Popen([node, str(HERE / "pico.mjs"), json.dumps(config)],
                                     pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        child.close()
        self.rig = self.rig_server(self)
        self.sel.register(self.rig.listener, selectors.EVENT_READ, self.rig.accept)
        self.host.update()
        self._update_node()

    def boards(self, dut, firmware):
        """The chips node runs and the wires between them: here the one Pico, its rig built in."""
        return {"boards": [dut], "wiring": []}

    # -- node ----------------------------------------------------------------------------------

    def _send_node(self, kind, payload):
        self.node_out += _FRAME.pack(kind, len(payload)) + payload
        self._flush_node()

    def node_request(self, request, callback):
        request = dict(request, id=self.next_id)
        self.pending[self.next_id] = callback
        self.next_id += 1
        self._send_node(b"J", json.dumps(request).encode())

    def _flush_node(self):
        if self.node_out:
            try:
                sent = self.node_sock.send(self.node_out)
                del self.node_out[:sent]
            except BlockingIOError:
                pass
            except OSError:
                self.node_out.clear()
        self._update_node()

    def _update_node(self):
        for port in self.ports.values():
            port.update()
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.node_out else 0)
        if events != self.node_events:
            if self.node_events:
                self.sel.modify(self.node_sock, events, self._from_node)
            else:
                self.sel.register(self.node_sock, events, self._from_node)
            self.node_events = events

    def _from_node(self, mask):
        if mask & selectors.EVENT_WRITE:
            self._flush_node()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = self.node_sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.info("the emulator closed its link (exit status %s)", self.node.poll())
            self.running = False
            return
        buf = self.node_in + data
        at = 0
        while len(buf) - at >= _FRAME.size:
            kind, size = _FRAME.unpack_from(buf, at)
            if len(buf) - at - _FRAME.size < size:
                break
            payload = buf[at + _FRAME.size: at + _FRAME.size + size]
            at += _FRAME.size + size
            if kind in self.ports:
                self.ports[kind].to_host(payload)
            elif kind == b"J":
                self._on_node_message(json.loads(payload))
        self.node_in = buf[at:]

    def _on_node_message(self, msg):
        if "id" in msg:
            callback = self.pending.pop(msg["id"], None)
            if callback is not None:
                callback(msg)
            return
        event = msg.get("event")
        if event == "pwm":
            self.tones.pwm(msg["t_ms"], msg["freq"], msg["duty"])
        elif event == "ready":
            self.ready = True
        elif event in ("boot", "usb", "halted"):
            log.info("emulator: %s", msg)

    # -- main loop -------------------------------------------------------------------------------

    def wait_ready(self, timeout_s=_READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while self.running and not self.ready and time.monotonic() < deadline:
            for key, mask in self.sel.select(0.2):
                key.data(mask)
            if self.node.poll() is not None:
                break
        return self.ready

    def serve(self):
        while self.running:
            for key, mask in self.sel.select(1.0):
                key.data(mask)
            if self.node.poll() is not None:
                log.info("the emulator exited (status %s)", self.node.returncode)
                self.running = False
        self.shutdown()

    def shutdown(self):
        self.running = False
        # Closing the link tells node to save its flash and state and exit.
        try:
            self.node_sock.close()
        except OSError:
            pass
        try:
            self.node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.info("the emulator did not exit: killing it")
            self.node.kill()
            self.node.wait()


# -- background process ----------------------------------------------------------------------------


def start(directory, firmware=None, bootrom=None, timeout_s=_READY_TIMEOUT_S + 10, fram=True):
    """Boot an emulated Pico in DIR in the background; returns emu.json's content. fram=False:
    a bare Pico, without the FRAM the board's data fits (the firmware keeps its records on flash)."""
    directory = Path(directory).resolve()
    running = info(directory)
    if running:
        raise TargetError("a board already runs in %s (pid %d)" % (directory, running["pid"]))
    find_node(), find_rp2040js()  # a clear error here, before anything starts
    firmware, bootrom = find_firmware(firmware), find_bootrom(bootrom)
    directory.mkdir(parents=True, exist_ok=True)
    args = ["--firmware", firmware, "--bootrom", bootrom] + ([] if fram else ["--no-fram"])
    return launch(directory, "pumpsim.targets.rp2040js.supervisor", args, "the emulated Pico", TargetError, timeout_s)


def make_image(directory, timeout_s=600.0):
    """A blank emulated Pico given a new key and the firmware over its pty with mpremote, as a
    Pico on USB is: DIR/flash.bin and DIR/host.key, for boards to start from copies of."""
    from pumpsim import deploy
    from pumpsim.client import PumpClient
    from pumpsim.errors import PumpsimError
    from pumpsim.targets.process import stop

    directory = Path(directory)
    info_ = start(directory)
    try:
        key = deploy.new_key()
        (directory / "host.key").write_text(key.hex() + "\n")
        deploy.provision_key(info_["port"], key)
        deploy.deploy(info_["port"], "rpi_pico", build_dir=deploy.build("rpi_pico", out_dir=directory / "build"))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with PumpClient.open(info_["port"], key=key, timeout=60.0) as client:
                    client.status()
                break
            except PumpsimError:
                if time.monotonic() > deadline:
                    raise TargetError("the deployed pump did not answer within %.0f s" % timeout_s) from None
                time.sleep(1.0)
    finally:
        stop(directory)
    (directory / "emu.json").unlink(missing_ok=True)
    return directory / "flash.bin", key


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-rp2040js", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--firmware")
    parser.add_argument("--bootrom")
    parser.add_argument("--no-fram", action="store_true", help="a bare Pico: no FRAM on SPI0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        firmware, bootrom = find_firmware(args.firmware), find_bootrom(args.bootrom)
        sup = Supervisor(args.dir, firmware, bootrom, find_node(), find_rp2040js(), fram=not args.no_fram)
    except TargetError as exc:
        log.error("%s", exc)
        return 1

    def ready():
        if sup.wait_ready():
            return True
        log.error("the emulator did not come up (exit status %s)", sup.node.poll())
        return False

    return serve_in_background(sup, {"board": "rpi_pico", "target": "rp2040js", "firmware": firmware}, ready)


if __name__ == "__main__":
    sys.exit(main())
