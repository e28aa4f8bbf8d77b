# Hardware fakes and frame helpers for the unit tests. Written in the subset of Python that the
# MicroPython unix port runs too, so the same fakes drive the firmware on both interpreters.
#
# Nothing here calls the firmware's own framing or HMAC: a test that signs with the code it checks
# proves nothing.
import binascii
import hashlib
import json

DAY_MS = 86400000


def crc_hex(data):
    return "%08x" % (binascii.crc32(data) & 0xFFFFFFFF)


def hmac_sha256_hex(key, message):
    """RFC 2104 with a 64-byte block, written out here independently of the firmware's."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes([b ^ 0x36 for b in key]) + message).digest()
    outer = hashlib.sha256(bytes([b ^ 0x5C for b in key]) + inner).digest()
    return binascii.hexlify(outer).decode()


def frame(seq, verb, payload="{}"):
    body = (">%d %s %s" % (seq, verb, payload)).encode()
    return body + b"*" + crc_hex(body).encode() + b"\n"


def signed(key, nonce, seq, verb, payload="{}"):
    body = (">%d %s %s" % (seq, verb, payload)).encode()
    body += b" #" + hmac_sha256_hex(key, nonce.encode() + b" " + body).encode()
    return body + b"*" + crc_hex(body).encode() + b"\n"


def split_line(line):
    """(kind, seq, verb, payload dict, crc ok) of one line the pump wrote."""
    text = line.decode().rstrip("\n")
    star = text.rfind("*")
    body, crc = text[:star], text[star + 1:]
    head, verb, payload = body.split(" ", 2)
    return head[0], int(head[1:]), verb, json.loads(payload), crc == crc_hex(body.encode())


class FakeClock:
    def __init__(self, now_ms=0):
        self.now = now_ms

    def now_ms(self):
        return self.now


class CountingMotor:
    """What the rig does: count the pulses that reached the motor."""

    def __init__(self):
        self.strokes = 0

    def stroke(self):
        self.strokes += 1
        return True


class SilentBuzzer:
    def tone(self, hz):
        pass

    def off(self):
        pass


class RecordingWatchdog:
    def __init__(self):
        self.kept_fed = False

    def start(self):
        pass

    def feed(self):
        pass

    def keep_fed(self, until_ms, clock=None):
        self.kept_fed = True


class MemoryStore:
    """pump.store.Store's interface in RAM, for long simulations (the store has its own tests)."""

    def __init__(self):
        self.last = None
        self.seq = 0
        self.repaired = False

    def save(self, payload, stroke=False, more=b""):
        self.seq += 1
        self.last = bytes(payload) + bytes(more)

    def load(self):
        return self.last

    def check(self):
        return 0


class Stuck(Exception):
    """The firmware would wait forever, or waited far more often than the test allows."""


class ScriptedLink:
    """The serial line, fed from a script of (at_ms, bytes or callable(link) -> bytes).

    wait() moves the fake clock to its deadline, or to the next scripted input if that comes
    first: pump time passes only as fast as the firmware asks, as on the virtual board."""

    def __init__(self, clock, script=(), max_waits=1000000):
        self.clock = clock
        self.script = list(script)
        self.out = []
        self.waits = 0
        self.max_waits = max_waits
        self.kbd_intr = 3
        self._pending = b""

    def start(self):
        self.kbd_intr = -1

    def stop(self):
        self.kbd_intr = 3

    def wait(self, timeout_ms):
        self.waits += 1
        if self.waits > self.max_waits:
            raise Stuck("more than %d waits" % self.max_waits)
        if self._pending:
            return True
        if not self.script:
            if timeout_ms < 0:
                raise Stuck("waiting forever with nothing left to send")
            self.clock.now += timeout_ms
            return False
        at_ms = self.script[0][0]
        if timeout_ms >= 0 and self.clock.now + timeout_ms < at_ms:
            self.clock.now += timeout_ms
            return False
        self.clock.now = max(self.clock.now, at_ms)
        data = self.script.pop(0)[1]
        self._pending = data(self) if callable(data) else data
        return True

    def read_available(self):
        data, self._pending = self._pending, b""
        return data

    def write(self, data):
        self.out.append(bytes(data))

    def nonce(self):
        """The nonce of the latest hello reply."""
        for line in reversed(self.out):
            kind, _, verb, payload, _ = split_line(line)
            if kind == "<" and verb == "ok" and "nonce" in payload:
                return payload["nonce"]
        raise Stuck("no hello reply yet")


class FakeHardware:
    """Everything pump.app reads from hal.Hardware, without hardware."""

    def __init__(self, data_dir, key, script=(), stroke_nl=500):
        from pump.eventlog import EventLog
        from pump.store import Store

        self.board = "test"
        self.fw = "0.0.0-test"
        self.micropython = "0.0.0"
        self.stroke_nl = stroke_nl
        self.clock = FakeClock()
        self.motor = CountingMotor()
        self.link = ScriptedLink(self.clock, script)
        self.data_dir = data_dir
        self.store = Store(data_dir)
        self.log = EventLog(data_dir)
        self.key = key
        self.reset_cause = "power-on"
        self.reset_at_ms = None
        self.battery = None
        self.eri_mv, self.reset_mv, self.eos_mv = 2850, 2750, 2700
        self.buzzer = SilentBuzzer()
        self.watchdog = RecordingWatchdog()
        self.wdt_ms = 0
        self.max_sleep_ms = 0
        self.maintenance_until_ms = None

    def start_maintenance(self, until_ms):
        self.maintenance_until_ms = until_ms
        return until_ms
