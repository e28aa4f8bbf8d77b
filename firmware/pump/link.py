# The firmware side of serial protocol v1 (docs/protocol.md): framing, CRC, authentication.
import binascii
import hashlib
import json

from pump import jsonfx
from pump.errors import AuthError, CrcError, FrameError, ReplayError

try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(__x):  # positional-only (the leading __), as micropython.const is
        return __x

_LIMIT = const(2048)  # a week of flex steps (8 × 13) and its MAC fit
_NL = const(10)
_CR = const(13)
_START = const(62)  # ">"
_MAC_HEX = const(64)
_SEQ_MAX = 4294967295  # not const(): beyond a 32-bit board's small ints


def crc_hex(data):
    return "%08x" % (binascii.crc32(data) & 0xFFFFFFFF)


def hexlify(data):
    return binascii.hexlify(data).decode()


def hmac_sha256(key, message):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(message)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def same(a, b):
    """Compare in constant time, so a MAC cannot be guessed byte by byte from reply timing."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


class Request:
    __slots__ = ("seq", "verb", "args", "mac", "signed")

    def __init__(self, seq, verb, args, mac, signed):
        self.seq = seq
        self.verb = verb
        self.args = args
        self.mac = mac
        self.signed = signed


def parse(line):
    """A complete line (from '>' up to, not including, the newline) → Request, or FrameError."""
    star = line.rfind(b"*")
    if star < 0:
        raise FrameError("no '*' before the CRC")
    body, crc = line[:star], line[star + 1 :]
    if len(crc) != 8:
        raise FrameError("the CRC must be 8 hex digits")
    if crc.decode().lower() != crc_hex(body):
        raise CrcError("CRC mismatch")
    text = body.decode()
    parts = text[1:].split(" ", 2)
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1]:
        raise FrameError("expected '>seq verb payload'")
    seq = int(parts[0])
    if seq > _SEQ_MAX:
        raise FrameError("seq above %d" % _SEQ_MAX)
    rest = parts[2]
    mac = None
    signed = body
    if len(rest) > _MAC_HEX + 2 and rest[-_MAC_HEX - 2 : -_MAC_HEX] == " #":
        mac = rest[-_MAC_HEX:]
        rest = rest[: -_MAC_HEX - 2]
        signed = body[: len(body) - _MAC_HEX - 2]
    try:
        args = json.loads(rest)
    except ValueError:
        raise FrameError("the payload is not JSON") from None
    if not isinstance(args, dict):
        raise FrameError("the payload must be a JSON object")
    return Request(seq, parts[1], args, mac, signed)


class Framer:
    """Turns bytes from the line into requests and frame errors; noise never gets further."""

    def __init__(self):
        self._buf = bytearray()
        self._in_frame = False
        self._bad = None
        self._line_noise = False
        self.noise_bytes = 0

    def feed(self, data, out):
        """Append (seq, Request or PumpError) items to out for each line completed in data."""
        for byte in data:
            if byte == _NL or byte == _CR:
                # A terminal's Enter ends a line too: a REPL tool poking at the running pump
                # (ampy, rshell, pyboard.py send \r) is told at once that this is no REPL.
                self._end_line(out)
            elif not self._in_frame:
                if byte == _START:
                    self._in_frame = True
                    self._buf.append(byte)
                else:
                    self.noise_bytes += 1
                    self._line_noise = True
            elif self._bad is None:
                if byte < 32 or byte > 126:
                    self._bad = "a control or non-ASCII byte inside a frame"
                elif len(self._buf) >= _LIMIT:
                    self._bad = "frame longer than %d bytes" % _LIMIT
                else:
                    self._buf.append(byte)

    def _end_line(self, out):
        if self._in_frame:
            if self._bad is not None:
                out.append((0, FrameError(self._bad)))
            else:
                try:
                    request = parse(bytes(self._buf))
                    out.append((request.seq, request))
                except FrameError as exc:
                    out.append((0, exc))
                except (ValueError, UnicodeError):
                    out.append((0, FrameError("unreadable frame")))
        elif self._line_noise:
            out.append((0, FrameError("line noise: no frame on this line")))
        self._buf = bytearray()
        self._in_frame = False
        self._bad = None
        self._line_noise = False


def encode(kind, seq, verb, payload):
    body = ("%s%d %s %s" % (kind, seq, verb, jsonfx.dumps(payload))).encode()
    return body + b"*" + crc_hex(body).encode() + b"\n"


class Session:
    """Who may change therapy: the holder of the key, once per request, never twice."""

    def __init__(self, key, urandom):
        self._key = key
        self._urandom = urandom
        self.nonce = None
        self.last_seq = -1
        self.failures = 0

    def start(self):
        self.nonce = hexlify(self._urandom(16))
        self.last_seq = -1
        return self.nonce

    def check(self, request):
        if self._key is None:
            raise AuthError("this board has no key provisioned")
        if request.mac is None:
            raise AuthError("'%s' needs an authenticated request" % request.verb)
        if self.nonce is None:
            raise AuthError("no session: send hello first")
        expected = hexlify(hmac_sha256(self._key, self.nonce.encode() + b" " + request.signed))
        if not same(expected.encode(), request.mac.lower().encode()):
            raise AuthError("wrong MAC")
        if request.seq <= self.last_seq:
            raise ReplayError("seq %d is not above %d: replayed request" % (request.seq, self.last_seq))
        self.last_seq = request.seq
