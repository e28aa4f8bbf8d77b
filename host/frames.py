"""Frames of serial protocol v1, host side (docs/protocol.md). Written independently of the
firmware's implementation, so each checks the other."""

import hashlib
import hmac
import json
import zlib

from pumpsim.errors import FrameError

MAX_FRAME = 2048  # the firmware's limit, newline excluded


def crc_hex(body: bytes) -> str:
    return "%08x" % (zlib.crc32(body) & 0xFFFFFFFF)


def sign(key: bytes, nonce: str, body: bytes) -> str:
    return hmac.new(key, nonce.encode("ascii") + b" " + body, hashlib.sha256).hexdigest()


def request(seq: int, verb: str, payload: dict, key: bytes = None, nonce: str = None) -> bytes:
    body = (">%d %s %s" % (seq, verb, json.dumps(payload, separators=(",", ":")))).encode("ascii")
    if key is not None:
        body += b" #" + sign(key, nonce, body).encode("ascii")
    line = body + b"*" + crc_hex(body).encode("ascii")
    if len(line) > MAX_FRAME:
        raise FrameError("request of %d bytes, above the pump's limit of %d" % (len(line), MAX_FRAME))
    return line + b"\n"


class Frame:
    __slots__ = ("kind", "seq", "verb", "payload")

    def __init__(self, kind, seq, verb, payload):
        self.kind, self.seq, self.verb, self.payload = kind, seq, verb, payload

    def __repr__(self):
        return "Frame(%r, %d, %r, %r)" % (self.kind, self.seq, self.verb, self.payload)


def decode(line: bytes) -> Frame:
    """One line from the pump (without its newline) → Frame; FrameError if it is not one."""
    line = line.rstrip(b"\r")
    start = -1
    # Noise may precede a frame on the same line: a frame starts at its kind character.
    for i, byte in enumerate(line):
        if byte in b"<!" and line[i + 1 : i + 2].isdigit():
            start = i
            break
    if start < 0:
        raise FrameError("no frame in %r" % line[:60])
    line = line[start:]
    star = line.rfind(b"*")
    if star < 0:
        raise FrameError("frame without CRC: %r" % line[:60])
    body, crc = line[:star], line[star + 1 :]
    if crc.decode("ascii", "replace") != crc_hex(body):
        raise FrameError("CRC mismatch in %r" % line[:60])
    try:
        head, verb, payload = body[1:].decode("ascii").split(" ", 2)
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise FrameError("malformed frame %r" % line[:60]) from None
    if not head.isdigit() or not isinstance(data, dict):
        raise FrameError("malformed frame %r" % line[:60])
    return Frame(chr(body[0]), int(head), verb, data)
