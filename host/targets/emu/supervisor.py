"""The virtual board: the MicroPython unix port made to look like a board plugged in over USB.

The supervisor owns a public pty (what pyserial and mpremote open), runs the unix port on a
private raw pty with its flash image (DIR/flash.img) mounted as its filesystem, restarts it on every kind of
reset, and plays the rig: it counts MOTOR_STEP pulses and owns pump time.

    python -m pumpsim.targets.emu.supervisor --dir DIR [--clock stepped] [--micropython PATH]
        [--reset-causes all|rp2]

Library use: start(dir) spawns it in the background and returns what emu.json holds;
stop(dir) ends it.
"""

import argparse
import array
import csv
import json
import logging
import os
import random
import secrets
import selectors
import struct
import sys
import time
import tty
from pathlib import Path

from ..process import info, launch, serve_in_background, stop  # noqa: F401 - stop: every target's boards stop alike
from .clock import Clock
from .. import fram
from .rigserver import RigServer
from .tones import Tones
from .unixport import Board, EmuError, find_micropython
from . import flashfs
from .flashfs import IMAGE as FLASH_IMAGE

import pumpsim.boards.emu

# The board data of the virtual board: pins, wiring and board.json.
HERE = Path(pumpsim.boards.emu.__file__).resolve().parent
_MSG = struct.Struct("<bq")
# The rig's trace: the pump time in ms of each stroke counted, int64 little-endian, in order.
TRACE = "trace.bin"
_SOFT_REBOOT = b"MPY: soft reboot\r\n"
_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
# The friendly REPL's banner ends so, after a reset and after Ctrl-B leaves the raw REPL.
_FRIENDLY_BANNER = b'Type "help()" for more information.\r\n'
# At most one Ctrl-C in this time: a second SIGINT before the first is taken ends the unix port.
_INTERRUPT_GAP_S = 0.1
_OUT_LIMIT = 1 << 16
_IN_LIMIT = 1 << 16
_CAUSE_SOFT = 5
_WAKES_PER_FEED = 3
# What machine.reset_cause() can tell. "all": every cause apart. "rp2": as an RP2040, which knows
# only power-on and its watchdog: machine.reset() reboots through the watchdog, and the RUN pin
# (the rig's reset) reads as power-on; a soft reset keeps the last cause.
RESET_CAUSES = ("all", "rp2")
_RP2_CAUSES = {"hard": "wdt", "rig": "pwron", "wdt": "wdt", "pwron": "pwron"}
# A board that says nothing on its wires for this long while awake and time is wanted is hung
# (stepped time cannot pass while it runs, so its watchdog could not otherwise expire).
_SILENT_HUNG_S = 10.0

log = logging.getLogger("pumpsim.emu")


def read_pins(board_dir=HERE):
    with open(board_dir / "pins.csv", newline="") as f:
        return {row["role"]: int(row["pin"]) for row in csv.DictReader(f)}


class Supervisor:
    def __init__(self, directory, micropython, clock_mode="stepped", reset_causes="all", fram=True):
        if reset_causes not in RESET_CAUSES:
            raise ValueError("reset causes are %s, not %r" % (" or ".join(RESET_CAUSES), reset_causes))
        self.reset_causes = reset_causes
        self.last_cause = "pwron"
        self.dir = Path(directory).resolve()
        # The board's flash: a littlefs image as a Pico's (boards/emu/rom/_flash.py); a new board's
        # is blank, and its first boot makes the filesystem, as a Pico's does.
        self.flash = self.dir / FLASH_IMAGE
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.flash.exists():
            flashfs.blank(self.flash)
        self.micropython = micropython
        self.state_path = self.dir / "rig.json"
        state = self._load_state()
        self.pulses = state.get("pulses", 0)
        # The rig's trace: the pump time of every stroke counted, kept as the count is.
        self.trace_path = self.dir / TRACE
        self.strokes_ms = self._load_trace()
        self.uid = state.get("uid") or secrets.token_hex(8)
        self.clock = Clock(state.get("clock_ms", 0), clock_mode)
        self.pins = read_pins()
        self.motor_pin = self.pins["MOTOR_STEP"]
        self.board_info = json.loads((HERE / "board.json").read_text())
        self.stroke_nl = self.board_info["stroke_nl"]
        self.levels = {}
        self.adc_u16 = {}
        self.feedback_pin = self.pins["MOTOR_FEEDBACK"]
        self.buzzer_pin = self.pins["BUZZER"]
        self.battery_pin = self.pins["BATTERY_ADC"]
        # The board's FRAM (board.json fram_bytes, pins FRAM_*): a file beside the flash folder.
        self.fram = None
        if fram and self.board_info.get("fram_bytes"):
            self.fram = (self.dir / "fram.bin", self.pins["FRAM_CS"], self.board_info["fram_bytes"])
            if not self.fram[0].exists():  # made here: the board may not make files (confine.py)
                self.fram[0].write_bytes(bytes(self.fram[2]))
        self.stall = state.get("stall", "off")  # off, on, intermittent, next (stall_left)
        self.stall_left = state.get("stall_left", 0)
        # kept: the board's RTC reads rig time; volatile: it restarts at its epoch at every
        # power-up and reset, as a Pico's does (from the next one). A soft reset keeps it.
        self.rtc = state.get("rtc", "kept")
        # What setting the board's RTC (machine.RTC) added to it: kept as the RTC keeps its time.
        self.rtc_offset_ms = state.get("rtc_offset_ms", 0)
        self.boot_ms = self.clock.now_ms()
        self.attempts = 0
        # When the motor last failed to turn: the phase of the pump's stall retries, seen on the wire.
        self.last_failed_ms = state.get("last_failed_ms")
        self.last_pulse_ms = state.get("last_pulse_ms")
        model = self.board_info["battery_model"]
        self.battery_drain = (model["drain_uv_per_day"], model["drain_nv_per_stroke"])
        self.battery_base = state.get("battery_base") or [model["fresh_mv"] * 1000, 0, 0]
        self.tones = Tones()
        self.boots = 0
        self.power_cuts = state.get("power_cuts", 0)
        self.flash_erases = state.get("flash_erases", 0)  # blocks erased, over the board's life
        self.cut_at_write = None
        self.writes_seen = 0
        self.random = random.Random(state.get("seed", 0))
        self.sel = selectors.DefaultSelector()
        self.port_master, self.port_slave = os.openpty()
        tty.setraw(self.port_slave)
        os.set_blocking(self.port_master, False)
        self.port = os.ttyname(self.port_slave)
        self.out_buf = bytearray()
        self.sel.register(self.port_master, selectors.EVENT_READ, self._from_host)
        self.port_events = selectors.EVENT_READ
        self.rig = RigServer(self)
        self.sel.register(self.rig.listener, selectors.EVENT_READ, self.rig.accept)
        self.board = None
        self.restart = None
        self.running = True

    # -- persistence ---------------------------------------------------------------------------

    def _load_state(self):
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _load_trace(self):
        """The strokes' times saved beside rig.json: never more than its count (what came after
        it was saved is not counted); fewer when rig.json is older than the trace."""
        strokes = array.array("q")
        try:
            data = self.trace_path.read_bytes()
        except OSError:
            data = b""
        strokes.frombytes(data[: len(data) // 8 * 8])
        if sys.byteorder == "big":
            strokes.byteswap()
        del strokes[self.pulses:]
        if len(strokes) * 8 != len(data):
            self._write_trace(strokes, 0, "wb")
        self._trace_saved = len(strokes)
        return strokes

    def _write_trace(self, strokes, start, mode):
        tail = strokes[start:]
        if sys.byteorder == "big":
            tail.byteswap()
        with open(self.trace_path, mode) as f:
            f.write(tail.tobytes())

    def untimed(self):
        """Strokes counted whose time the trace does not hold (a rig.json from before it)."""
        return self.pulses - len(self.strokes_ms)

    def save_state(self):
        # The trace first: a stroke whose time is saved but not its count is dropped at load.
        if len(self.strokes_ms) > self._trace_saved:
            self._write_trace(self.strokes_ms, self._trace_saved, "ab")
            self._trace_saved = len(self.strokes_ms)
        state = {"pulses": self.pulses, "clock_ms": self.clock.now_ms(), "uid": self.uid,
                 "stroke_nl": self.stroke_nl, "power_cuts": self.power_cuts, "stall": self.stall,
                 "flash_erases": self.flash_erases,
                 "stall_left": self.stall_left, "last_failed_ms": self.last_failed_ms,
                 "last_pulse_ms": self.last_pulse_ms, "rtc": self.rtc,
                 "rtc_offset_ms": self.rtc_offset_ms,
                 "battery_base": self.battery_base}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    # -- board lifecycle -----------------------------------------------------------------------

    def power_up(self, mode="app", cause="pwron", watchdog=None):
        """Start the unix port. watchdog: (timeout_ms, fed_ms) of a watchdog that a soft reset
        leaves running, as on silicon."""
        self.boots += 1
        if cause != "soft":
            self.boot_ms = self.clock.now_ms()
            if self.rtc == "volatile":
                self.rtc_offset_ms = 0  # a Pico's RTC forgets what it was set to
        cause = self._reported_cause(cause)
        self.board = Board(self.micropython, (self.flash, flashfs.BLOCKS), mode, cause, self.uid, self.rtc, self.boot_ms,
                           self.fram, self.rtc_offset_ms)
        if watchdog:
            self.board.wdt_ms, self.board.wdt_fed_ms = watchdog
        self.sel.register(self.board.master, selectors.EVENT_READ, self._from_board)
        self.board.master_events = selectors.EVENT_READ
        self._port_events()
        self.sel.register(self.board.wire, selectors.EVENT_READ, self._from_wire)
        log.info("boot %d: mode=%s cause=%s pid=%d", self.boots, mode, cause, self.board.proc.pid)

    def _reported_cause(self, cause):
        if self.reset_causes == "all":
            return "hard" if cause == "rig" else cause
        if cause == "soft":
            return self.last_cause
        self.last_cause = _RP2_CAUSES.get(cause, "wdt")
        return self.last_cause

    def request_restart(self, mode, cause, banner=False):
        """End the running board; it comes back in `mode` (app: main.py runs; raw: raw REPL)."""
        if self.board is None:
            return
        if self.restart is None:
            self.restart = (mode, cause, banner)
        self.board.kill()
        self._board_gone()

    def _board_gone(self):
        board, self.board = self.board, None
        if board is None:
            return
        for fd in (board.master, board.wire):
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        board.kill()
        self._drain(board)
        board.close()
        restart, self.restart = self.restart, None
        if restart is None:
            # The unix port exits on Ctrl-D and soft_reset(): that is a soft reset.
            restart = ("raw" if board.raw_repl else "app", "soft", True)
        mode, cause, banner = restart
        log.info("board exited (%s); restarting mode=%s cause=%s", board.proc.returncode, mode, cause)
        if not self.running:
            return
        if banner:
            self.to_host(_SOFT_REBOOT)
        # A soft reset does not stop a running watchdog; every other reset does.
        watchdog = (board.wdt_ms, board.wdt_fed_ms) if cause == "soft" and board.wdt_ms else None
        self.power_up(mode, cause, watchdog)
        self.rig.check_waiters()

    # -- serial line ---------------------------------------------------------------------------

    def to_host(self, data):
        if not self.out_buf:
            try:
                written = os.write(self.port_master, data)
                data = data[written:]
            except BlockingIOError:
                pass
            except OSError:
                return
        if data:
            self.out_buf += data
            if len(self.out_buf) > _OUT_LIMIT:
                # Nobody reads the port: keep the newest output, as a USB host that is not
                # listening loses what the board printed.
                del self.out_buf[: len(self.out_buf) - _OUT_LIMIT]
            self._port_events()

    def _port_events(self):
        """Read the host while the board keeps up (a USB device holds the host back when its
        buffer is full: nothing the host sends is lost); write while output waits."""
        board = self.board
        events = selectors.EVENT_WRITE if self.out_buf else 0
        if board is None or len(board.in_buf) < _IN_LIMIT:
            events |= selectors.EVENT_READ
        if events != self.port_events:
            if self.port_events and events:
                self.sel.modify(self.port_master, events, self._from_host)
            elif events:
                self.sel.register(self.port_master, events, self._from_host)
            else:
                self.sel.unregister(self.port_master)
            self.port_events = events

    def _flush_host(self):
        try:
            written = os.write(self.port_master, self.out_buf)
            del self.out_buf[:written]
        except BlockingIOError:
            return
        except OSError:
            self.out_buf.clear()
        self._port_events()

    def _from_host(self, mask):
        if mask & selectors.EVENT_WRITE:
            self._flush_host()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(self.port_master, 4096)
        except (BlockingIOError, OSError):
            return
        board = self.board
        if not data or board is None:
            return
        if not board.attached and not board.output.raw:
            if b"\x03" in data and board.executing():
                # Code runs at the REPL: Ctrl-C interrupts it, and the interrupt takes the byte,
                # as a Pico's USB does while its interrupt character is set.
                data = data.replace(b"\x03", b"")
                board.interrupt(_INTERRUPT_GAP_S)
            data = board.input.feed(data, friendly=not board.raw_repl)
        board.in_buf += data
        self._flush_board(board)

    def _read_board(self, read):
        """Bytes from the board; None when there are none yet, or when it is gone (then handled)."""
        try:
            data = read()
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            self._board_gone()
            return None
        return data

    def _flush_board(self, board):
        """Pass on what the host sent as fast as the board's input takes it, keeping the rest."""
        try:
            written = os.write(board.master, board.in_buf)
        except BlockingIOError:
            written = 0
        except OSError:
            written = len(board.in_buf)  # the board is gone: its restart starts afresh
        del board.in_buf[:written]
        if written:
            if board.parked_until is not None:
                self.wake(board)
            else:
                board.pending_input = True
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if board.in_buf else 0)
        if events != board.master_events:
            self.sel.modify(board.master, events, self._from_board)
            board.master_events = events
        self._port_events()

    def _from_board(self, mask):
        board = self.board
        if mask & selectors.EVENT_WRITE:
            self._flush_board(board)
            if not mask & selectors.EVENT_READ:
                return
        data = self._read_board(lambda: os.read(board.master, 4096))
        if data is None:
            return
        if not board.attached:
            self._track_repl(board, data)
        self.to_host(board.output.feed(data))

    def _release_held(self):
        """Output held as the possible start of a marker goes out once nothing more came."""
        board = self.board
        if board is not None and board.output.hold_wait_s() == 0.0:
            self.to_host(board.output.release())

    def _drain(self, board):
        """What a board printed before it stopped still reaches the host: it left the board before
        the message that reset it (mpremote's `reset` waits for the byte that ends its paste)."""
        board.enter_raw = False  # a board that is gone takes no more input
        while True:
            try:
                data = os.read(board.master, 4096)
            except OSError:  # nothing more (EAGAIN), or the board's side is closed (EIO)
                return
            if not data:
                return
            if not board.attached:
                self._track_repl(board, data)
            self.to_host(board.output.feed(data))
        self.to_host(board.output.release())

    def _track_repl(self, board, data):
        """Which REPL the board is in, as its output shows: the banner it printed last."""
        tail = board.out_tail + data
        raw_at = tail.rfind(_RAW_BANNER)
        friendly_at = tail.rfind(_FRIENDLY_BANNER)
        if raw_at >= 0 or friendly_at >= 0:
            board.raw_repl = raw_at > friendly_at
            # A banner counts once: output after it must not find it again.
            tail = tail[max(raw_at + len(_RAW_BANNER), friendly_at + len(_FRIENDLY_BANNER)):]
        board.out_tail = tail[-64:]
        if board.enter_raw and tail.endswith(b">>> "):
            board.enter_raw = False
            os.write(board.master, b"\x01")

    # -- wires ---------------------------------------------------------------------------------

    def _from_wire(self, mask):
        board = self.board
        data = self._read_board(lambda: board.wire.recv(65536))
        if data is None:
            return
        board.last_msg_wall = time.monotonic()
        buf = board.wire_buf + data
        end = len(buf) - len(buf) % 9
        for offset in range(0, end, 9):
            kind, arg = _MSG.unpack_from(buf, offset)
            self._on_message(board, kind, arg)
            if self.board is not board:
                return
        board.wire_buf = buf[end:]
        self.rig.check_waiters()

    def _reply(self, board, kind, value):
        try:
            board.wire.send(_MSG.pack(kind, value))
        except OSError:
            pass

    def _clock_reply(self, board):
        kind = "T" if self.clock.stepped else "U"
        if self.cut_at_write is not None:
            kind = kind.lower()
        self._reply(board, ord(kind), self.clock.now_ms())

    def arm_power_cut(self, at_write):
        """Cut the power during the board's at_write-th flash write from now (1 = the next)."""
        self.cut_at_write = at_write
        self.writes_seen = 0

    def wake(self, board):
        board.parked_until = None
        board.pending_input = False
        # Its silence counts from now: asleep, however long, it was not hung.
        board.last_msg_wall = time.monotonic()
        # Time asleep in a wait does not count against the watchdog, provided the board feeds it
        # between its waits (a wait may wake once for input that is already gone): a board that
        # never feeds is reset all the same.
        if board.wakes_since_feed < _WAKES_PER_FEED:
            board.wdt_fed_ms = self.clock.now_ms()
        board.wakes_since_feed += 1
        self._clock_reply(board)

    def _on_message(self, board, kind, arg):
        if kind == 80:  # P: a digital output changed
            pin, level = arg >> 8, arg & 1
            if pin == self.motor_pin and level and not self.levels.get(pin):
                self._step()
            self.levels[pin] = level
        elif kind == 83:  # S: sleep
            self._on_sleep(board, arg)
        elif kind == 78:  # N: now
            self._clock_reply(board)
        elif kind == 66:  # B: application running (1) or back in the REPL (0)
            board.attached = bool(arg)
            if arg == 0:
                board.out_tail = b""
                # The watchdog goes on running in the REPL: only a timer's callback feeds it.
                self.repl_time()
        elif kind == 65:  # A: ADC
            self._reply(board, ord("V"), self._adc(arg))
        elif kind == 81:  # Q: PWM state of a pin
            pin, freq, duty = arg >> 48, (arg >> 16) & 0xFFFFFFFF, arg & 0xFFFF
            if pin == self.buzzer_pin:
                self.tones.pwm(self.clock.now_ms(), freq, duty)
        elif kind == 71:  # G: watchdog started
            board.wdt_ms = arg
            board.wdt_fed_ms = self.clock.now_ms()
            board.wakes_since_feed = 0
        elif kind == 72:  # H: watchdog fed
            board.wdt_fed_ms = self.clock.now_ms()
            board.wakes_since_feed = 0
        elif kind == 73:  # I: digital input
            self._reply(board, ord("V"), self.levels.get(arg, 0))
        elif kind == 87:  # W: a flash write of `arg` bytes is about to start
            self.writes_seen += 1
            allowed = -1
            if self.cut_at_write is not None and self.writes_seen >= self.cut_at_write:
                allowed = self.random.randrange(arg) if arg > 0 else 0
                log.info("power cut during write %d: %d of %d bytes reach the flash",
                         self.writes_seen, allowed, arg)
                self.cut_at_write = None
            self._reply(board, ord("V"), allowed)
        elif kind == 69:  # E: a block of the flash was erased
            self.flash_erases += 1
        elif kind == 75:  # K: the power went during a write
            self.power_cuts += 1
            self.request_restart("app", "pwron")
        elif kind == 70:  # F: a timer was set, or stopped (period 0)
            timer_id, one_shot, period_ms = arg >> 33, (arg >> 32) & 1, arg & 0xFFFFFFFF
            if period_ms:
                board.timers[timer_id] = [period_ms, self.clock.now_ms() + period_ms, one_shot]
            else:
                board.timers.pop(timer_id, None)
        elif kind == 102:  # f: a timer's callback has run
            board.timer_busy = False
            self.check_watchdog()
            if self.board is board:
                self.repl_time()
        elif kind == 67:  # C: the board's RTC was set
            self.rtc_offset_ms = arg
        elif kind == 82:  # R: machine.reset() / soft_reset()
            if arg == _CAUSE_SOFT:
                self.request_restart("raw" if board.raw_repl else "app", "soft", banner=True)
            else:
                self.request_restart("app", "hard")

    def _step(self):
        """A rising edge on MOTOR_STEP: the motor turns unless a stall is injected."""
        self.attempts += 1
        if self.stall == "next":
            # Fails exactly the next stall_left attempts, then turns for good.
            self.stall_left -= 1
            if self.stall_left <= 0:
                self.stall, self.stall_left = "off", 0
            moved = False
        else:
            moved = self.stall == "off" or (self.stall == "intermittent" and self.attempts % 2 == 0)
        if moved:
            self.pulses += 1
            self.last_pulse_ms = self.clock.now_ms()
            self.strokes_ms.append(self.last_pulse_ms)
        else:
            self.last_failed_ms = self.clock.now_ms()
        self.levels[self.feedback_pin] = 1 if moved else 0

    def battery_uv(self):
        base_uv, base_ms, base_pulses = self.battery_base
        per_day_uv, per_stroke_nv = self.battery_drain
        days_uv = per_day_uv * (self.clock.now_ms() - base_ms) // 86_400_000
        return base_uv - days_uv - per_stroke_nv * (self.pulses - base_pulses) // 1000

    def set_battery(self, millivolts):
        self.battery_base = [millivolts * 1000, self.clock.now_ms(), self.pulses]

    def _adc(self, pin):
        if pin == self.battery_pin:
            info = self.board_info
            adc_uv = self.battery_uv() // info["battery_divider"]
            return max(0, min(65535, adc_uv * 65535 // (info["battery_adc_full_scale_mv"] * 1000)))
        return self.adc_u16.get(pin, 0)

    def hang(self):
        """The board's main loop stops: it never returns from its wait."""
        if self.board is not None:
            self.board.hung = True
            self.board.parked_until = None

    def corrupt_flash(self, target):
        """Flip bits in the board's records, as a failing FRAM cell would (docs/architecture.md
        "Records"). Its flash is littlefs, which checks what it reads: without the FRAM there is
        nothing to corrupt from outside while the board runs, and the request is refused."""
        if self.fram is None or not self.fram[0].exists() or not fram.regions(self.fram[0].read_bytes()):
            raise ValueError("corrupt-flash: this board keeps its records in flash files (no FRAM, or "
                             "none written yet), and the flash is mounted by the running board")
        image = bytearray(self.fram[0].read_bytes())
        hit = fram.corrupt(image, target, self.random)
        self.fram[0].write_bytes(bytes(image))
        return hit

    def check_watchdog(self):
        board = self.board
        if board is None or not board.wdt_ms or board.timer_busy:
            return
        if not board.attached:
            # In the REPL nothing sleeps on the watchdog's behalf: fed by a timer, or it resets.
            if self.clock.now_ms() - board.wdt_fed_ms >= board.wdt_ms:
                log.info("watchdog: not fed in the REPL for %d ms, resetting",
                         self.clock.now_ms() - board.wdt_fed_ms)
                self.request_restart("app", "wdt")
            return
        if board.hung and self.clock.stepped:
            self.clock.set_now(self.clock.granted_ms)  # a hung board does not hold time back
        if not board.hung and board.parked_until is None and self.rig.waiters \
                and time.monotonic() - board.last_msg_wall > _SILENT_HUNG_S:
            log.info("the board stopped talking while awake: hung")
            board.hung = True
        if board.parked_until is not None and board.wakes_since_feed <= _WAKES_PER_FEED:
            return  # asleep in its wait, and it feeds between waits: not hung
        if self.clock.now_ms() - board.wdt_fed_ms >= board.wdt_ms:
            log.info("watchdog: not fed for %d ms, resetting", self.clock.now_ms() - board.wdt_fed_ms)
            self.request_restart("app", "wdt")

    def _on_sleep(self, board, until_ms):
        if board.hung:
            return
        if board.pending_input:
            self.wake(board)
        elif self.clock.try_sleep(until_ms):
            self.wake(board)
        else:
            board.parked_until = until_ms

    def _timers(self):
        """Running clock: wake a parked board whose deadline has come."""
        board = self.board
        if board is None or board.parked_until is None or self.clock.stepped:
            return None
        wait_s = self.clock.wall_seconds_until(board.parked_until)
        if wait_s is not None and wait_s <= 0:
            self.wake(board)
            return None
        return wait_s

    def repl_time(self):
        """In the REPL pump time runs to what was granted (stepped) or with the wall clock, and
        stops at each timer tick until its callback has run."""
        board = self.board
        if board is None or board.attached or board.timer_busy:
            return
        limit_ms = self.clock.granted_ms if self.clock.stepped else self.clock.now_ms()
        due = min(board.timers.items(), key=lambda item: item[1][1], default=None)
        if due is not None and due[1][1] <= limit_ms:
            timer_id, timer = due
            if self.clock.stepped:
                self.clock.set_now(timer[1])
            self.check_watchdog()
            if self.board is not board:
                return
            if timer[2]:
                del board.timers[timer_id]
            else:
                timer[1] += timer[0]
            board.timer_busy = True
            try:
                board.timer_wire.send(_MSG.pack(ord("F"), timer_id))
            except OSError:
                board.timer_busy = False
            return
        if self.clock.stepped:
            self.clock.set_now(limit_ms)
        self.check_watchdog()

    def _repl_timer_wait_s(self):
        """Running clock, in the REPL: wall seconds until the next timer tick."""
        board = self.board
        if board is None or board.attached or board.timer_busy or not board.timers or self.clock.stepped:
            return None
        return self.clock.wall_seconds_until(min(t[1] for t in board.timers.values()))

    def after_grant(self):
        """More pump time was granted: let a parked board run into it."""
        board = self.board
        if board is None:
            return
        if not board.attached:
            self.repl_time()
        elif board.parked_until is not None and self.clock.try_sleep(board.parked_until):
            self.wake(board)

    def board_idle(self):
        """True when the board waits on the clock (or does not use it): time may be read."""
        board = self.board
        return board is not None and ((not board.attached and not board.timer_busy)
                                      or board.parked_until is not None or board.hung)

    # -- main loop -----------------------------------------------------------------------------

    def serve(self):
        self.power_up("app", "pwron")
        last_save = time.monotonic()
        while self.running:
            held = self.board.output.hold_wait_s() if self.board is not None else None
            timeout = min(t for t in (self._timers(), self._repl_timer_wait_s(), self.rig.timeout(), held, 1.0)
                          if t is not None)
            for key, mask in self.sel.select(timeout):
                key.data(mask)
            self._release_held()
            if not self.clock.stepped:
                self.repl_time()
            self.check_watchdog()
            self.rig.check_waiters()
            if time.monotonic() - last_save > 5.0:
                self.save_state()
                last_save = time.monotonic()
        self.shutdown()

    def shutdown(self):
        self.running = False
        if self.board is not None:
            self.board.close()
            self.board = None
        self.save_state()


# -- background process ------------------------------------------------------------------------


def start(directory, micropython=None, clock="stepped", timeout_s=15.0, reset_causes="all", fram=True):
    """Boot a virtual board in DIR in the background; returns emu.json's content. fram=False: the
    board without its FRAM (the firmware keeps its records on flash)."""
    directory = Path(directory).resolve()
    Clock(mode=clock)  # refuses a bad mode before anything starts
    if reset_causes not in RESET_CAUSES:
        raise ValueError("reset causes are %s, not %r" % (" or ".join(RESET_CAUSES), reset_causes))
    running = info(directory)
    if running:
        raise EmuError("a virtual board already runs in %s (pid %d)" % (directory, running["pid"]))
    directory.mkdir(parents=True, exist_ok=True)
    binary = find_micropython(micropython)
    return launch(directory, "pumpsim.targets.emu.supervisor",
                  ["--clock", clock, "--micropython", binary, "--reset-causes", reset_causes]
                  + ([] if fram else ["--no-fram"]),
                  "the virtual board", EmuError, timeout_s)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pumpsim-emu", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--clock", default="stepped")
    parser.add_argument("--micropython")
    parser.add_argument("--reset-causes", default="all", choices=RESET_CAUSES)
    parser.add_argument("--no-fram", action="store_true", help="the board without its FRAM")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sup = Supervisor(args.dir, find_micropython(args.micropython), args.clock, args.reset_causes,
                     fram=not args.no_fram)
    sup.save_state()
    return serve_in_background(sup, {"board": "emu", "micropython": sup.micropython})


if __name__ == "__main__":
    sys.exit(main())
