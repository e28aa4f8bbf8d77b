"""The rig protocol served by the virtual board's supervisor (docs/protocol.md, "Rig protocol").

One request per line, one JSON object per reply line. A physical rig speaks the same protocol over
its own serial port; here it listens on 127.0.0.1.
"""

import json
import selectors
import socket


# What this rig can do to its board, by the names tests declare with pumpsim_needs (docs/testing.md).
CAN = ("stepped-clock", "reset", "power-cut", "power-cut-mid-write", "motor-stall", "battery", "tones", "hang",
       "corrupt-flash", "volatile-rtc", "boot-count")


# The most stroke times one `trace` reply holds: a client pages through the rest with FROM.
TRACE_PAGE = 5000


def parse_from(arg):
    """`trace [FROM]` -> FROM, the index of the first stroke wanted (0, the first one counted)."""
    if not arg:
        return 0
    if not arg.isdigit():
        raise RigError("trace takes the index of the first stroke wanted, a whole number from 0, not %r" % arg)
    return int(arg)


def trace_page(strokes_ms, start, untimed=0):
    """The reply to `trace FROM`: up to TRACE_PAGE stroke times from index FROM on."""
    return {"from": start, "strokes_ms": list(strokes_ms[start:start + TRACE_PAGE]), "total": len(strokes_ms),
            "untimed": untimed}


class RigError(Exception):
    """A rig request that cannot be carried out; its text is the reply's "error"."""


def parse_stall(arg):
    """`stall on|off|intermittent|next N` -> (mode, N: how many attempts fail; 0 but for next)."""
    mode, _, count = arg.partition(" ")
    if mode == "next":
        count = count.strip()
        if not count.isdigit() or int(count) < 1:
            raise RigError("stall next takes how many of the next motor attempts fail, "
                           "a whole number from 1, not %r" % count)
        return mode, int(count)
    if arg not in ("on", "off", "intermittent"):
        raise RigError("stall takes on, off, intermittent or next N, not %r" % arg)
    return arg, 0


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.inbuf = b""


class RigServer:
    def __init__(self, sup):
        self.sup = sup
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.waiters = []  # (target_ms, conn): advance requests not yet answered
        self.commands = {
            "hello": self.hello,
            "measure": self.measure,
            "time": self.time,
            "advance": self.advance,
            "clock": self.set_clock,
            "reset": self.reset,
            "power-cycle": self.power_cycle,
            "battery": self.battery,
            "stall": self.stall,
            "tones": self.tones,
            "trace": self.trace,
            "hang": self.hang,
            "corrupt-flash": self.corrupt_flash,
            "rtc": self.rtc,
        }

    # -- connections ---------------------------------------------------------------------------

    def accept(self, mask):
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        self.sup.sel.register(sock, selectors.EVENT_READ, lambda m, c=conn: self._read(c))

    def _close(self, conn):
        try:
            self.sup.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        self.waiters = [w for w in self.waiters if w[1] is not conn]

    def _read(self, conn):
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        while b"\n" in conn.inbuf:
            line, conn.inbuf = conn.inbuf.split(b"\n", 1)
            self._handle(conn, line.decode("ascii", "replace").strip())
        if len(conn.inbuf) > 4096:
            conn.inbuf = b""
            self._send(conn, {"error": "request line too long"})

    def _send(self, conn, obj):
        try:
            conn.sock.sendall(json.dumps(obj).encode() + b"\n")
        except OSError:
            self._close(conn)

    def _handle(self, conn, line):
        if not line:
            return
        verb, _, arg = line.partition(" ")
        handler = self.commands.get(verb)
        if handler is None:
            self._send(conn, {"error": "unknown rig request %r (known: %s)"
                              % (verb, ", ".join(sorted(self.commands)))})
            return
        try:
            reply = handler(conn, arg.strip())
        except RigError as exc:
            reply = {"error": str(exc)}
        if reply is not None:
            self._send(conn, reply)

    # -- requests ------------------------------------------------------------------------------

    def hello(self, conn, arg):
        return {"rig": "emu", "proto": 1, "clock": self.sup.clock.mode, "board": "emu", "can": list(CAN)}

    def measure(self, conn, arg):
        sup = self.sup
        delivered_nl = sup.pulses * sup.stroke_nl
        return {
            "pulses": sup.pulses,
            "stroke_nl": sup.stroke_nl,
            "delivered_nl": delivered_nl,
            "delivered_ul": delivered_nl / 1000,
            "clock_ms": sup.clock.now_ms(),
            "power_cuts": sup.power_cuts,
            "boots": sup.boots,
            "last_failed_ms": sup.last_failed_ms,
            "last_pulse_ms": sup.last_pulse_ms,
            "flash_erases": sup.flash_erases,
        }

    def time(self, conn, arg):
        return {"clock_ms": self.sup.clock.now_ms(), "clock": self.sup.clock.mode}

    def advance(self, conn, arg):
        try:
            duration_ms = int(arg)
        except ValueError:
            raise RigError("advance takes a whole number of milliseconds, not %r" % arg) from None
        if duration_ms < 0:
            raise RigError("advance cannot move time backwards (%d ms)" % duration_ms)
        target_ms = self.sup.clock.grant(duration_ms)
        self.sup.after_grant()
        self.waiters.append((target_ms, conn))
        self.check_waiters()
        return None

    def set_clock(self, conn, arg):
        try:
            self.sup.clock.set_mode(arg)
        except ValueError as exc:
            raise RigError(str(exc)) from None
        self.sup.after_grant()
        return self.time(conn, arg)

    def reset(self, conn, arg):
        self.sup.request_restart("app", "rig")
        return {"reset": "hard", "clock_ms": self.sup.clock.now_ms()}

    def power_cycle(self, conn, arg):
        if arg:
            if not arg.isdigit() or int(arg) < 1:
                raise RigError("power-cycle takes the number of the flash write to cut at (1 = next), not %r" % arg)
            self.sup.arm_power_cut(int(arg))
            return {"power": "armed", "at_write": int(arg), "clock_ms": self.sup.clock.now_ms()}
        self.sup.power_cuts += 1
        self.sup.request_restart("app", "pwron")
        return {"power": "cycled", "clock_ms": self.sup.clock.now_ms()}

    def battery(self, conn, arg):
        if arg:
            if not arg.isdigit() or not 0 < int(arg) <= 5000:
                raise RigError("battery takes millivolts, 1 to 5000, not %r" % arg)
            self.sup.set_battery(int(arg))
        return {"battery_mv": self.sup.battery_uv() // 1000}

    def stall(self, conn, arg):
        mode, fail_next = parse_stall(arg)
        self.sup.stall, self.sup.stall_left = mode, fail_next
        self.sup.save_state()
        return {"stall": "next", "fail_next": fail_next} if mode == "next" else {"stall": mode}

    def tones(self, conn, arg):
        return {"tones": self.sup.tones.listing()}

    def trace(self, conn, arg):
        return trace_page(self.sup.strokes_ms, parse_from(arg), self.sup.untimed())

    def hang(self, conn, arg):
        if self.sup.board is None or not self.sup.board.attached:
            raise RigError("the board runs no application to hang")
        self.sup.hang()
        return {"hung": True, "clock_ms": self.sup.clock.now_ms()}

    def corrupt_flash(self, conn, arg):
        try:
            return {"corrupted": self.sup.corrupt_flash(arg or "state")}
        except (ValueError, OSError) as exc:
            raise RigError(str(exc)) from None

    def rtc(self, conn, arg):
        if arg:
            if arg not in ("kept", "volatile"):
                raise RigError("rtc takes kept or volatile, not %r" % arg)
            self.sup.rtc = arg
            self.sup.save_state()
        return {"rtc": self.sup.rtc, "clock_ms": self.sup.clock.now_ms()}

    # -- advance bookkeeping -------------------------------------------------------------------

    def check_waiters(self):
        if not self.waiters:
            return
        sup = self.sup
        if sup.clock.stepped and not sup.board_idle():
            return
        now_ms = sup.clock.now_ms()
        done = [w for w in self.waiters if now_ms >= w[0]]
        if not done:
            return
        self.waiters = [w for w in self.waiters if now_ms < w[0]]
        sup.save_state()
        for target_ms, conn in done:
            self._send(conn, {"clock_ms": now_ms})

    def timeout(self):
        """Running clock: wall seconds until the first advance completes."""
        if not self.waiters or self.sup.clock.stepped:
            return None
        first = min(w[0] for w in self.waiters)
        return self.sup.clock.wall_seconds_until(first)
