"""Framing and authentication on the firmware side, checked with Python's own zlib and hmac."""

import hashlib
import hmac
import json
import zlib

import pytest

from pump import link
from pump.errors import AuthError, CrcError, FrameError, ReplayError

KEY = bytes(range(32))


def frame(seq, verb, payload="{}", key=None, nonce=None):
    body = (">%d %s %s" % (seq, verb, payload)).encode()
    if key is not None:
        body += b" #" + hmac.new(key, nonce.encode() + b" " + body, hashlib.sha256).hexdigest().encode()
    return body + b"*%08x\n" % zlib.crc32(body)


def feed(data):
    framer = link.Framer()
    out = []
    framer.feed(data, out)
    return framer, out


def test_hmac_matches_the_standard_library():
    for key in (b"", b"k", KEY, bytes(100)):
        for msg in (b"", b"abc", bytes(range(256))):
            assert link.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_a_good_frame_parses():
    _, out = feed(frame(42, "status", '{"a":1}'))
    (seq, request), = out
    assert seq == 42 and request.verb == "status" and request.args == {"a": 1}


def test_noise_before_a_frame_is_dropped_and_counted():
    framer, out = feed(b"\x03\x03zz" + frame(3, "status"))
    assert out[0][1].verb == "status"
    assert framer.noise_bytes == 4


@pytest.mark.parametrize("data, error", [
    (b">1 status {}*00000000\n", CrcError),
    (b">1 status {}\n", FrameError),
    (b">1 status {\x03}*00000000\n", FrameError),
    (b">" + b"x" * 3000 + b"\n", FrameError),
    (b"garbage line\n", FrameError),
    (frame(1, "status", "[1,2]"), FrameError),
    (frame(1, "status", "not json"), FrameError),
    (frame(1, "", "{}"), FrameError),
    (b">x status {}*" + b"%08x" % zlib.crc32(b">x status {}") + b"\n", FrameError),
])
def test_bad_frames_become_errors_with_seq_0(data, error):
    _, out = feed(data)
    (seq, exc), = out
    assert seq == 0 and isinstance(exc, error)


def test_bytes_without_a_newline_produce_nothing_yet():
    assert feed(b">1 status {}")[1] == []


def test_a_carriage_return_ends_a_line_as_a_terminal_enter_does():
    """A REPL tool at the running pump sends \r\x03\x03\r\x01: it is answered at once, so it
    fails within its own timeout instead of waiting for ever; a frame ended \r\n counts once."""
    _, out = feed(b"\r\x03\x03\r\x01")
    (seq, exc), = out
    assert seq == 0 and isinstance(exc, FrameError)
    _, out = feed(frame(7, "status").replace(b"\n", b"\r\n"))
    assert [(seq, request.verb) for seq, request in out] == [(7, "status")]
    _, out = feed(frame(8, "status").replace(b"\n", b"\r"))
    assert [seq for seq, _ in out] == [8]


def test_encode_carries_a_valid_crc():
    line = link.encode("<", 5, "ok", {"x": 1})
    body, crc = line.rstrip(b"\n").rsplit(b"*", 1)
    assert crc == b"%08x" % zlib.crc32(body)
    assert json.loads(body.split(b" ", 2)[2]) == {"x": 1}


def session():
    s = link.Session(KEY, lambda n: bytes(n))
    return s, s.start()


def parsed(data):
    return feed(data)[1][0][1]


def test_a_signed_request_passes_once():
    s, nonce = session()
    request = parsed(frame(5, "program", '{"x":1}', KEY, nonce))
    s.check(request)
    with pytest.raises(ReplayError):
        s.check(request)


def test_wrong_key_missing_mac_and_stale_nonce_are_refused():
    s, nonce = session()
    with pytest.raises(AuthError):
        s.check(parsed(frame(5, "program", "{}", bytes(32), nonce)))
    with pytest.raises(AuthError):
        s.check(parsed(frame(5, "program")))
    old = nonce
    s._urandom = lambda n: b"\x01" * n
    s.start()
    with pytest.raises(AuthError):
        s.check(parsed(frame(6, "program", "{}", KEY, old)))


def test_no_key_provisioned_refuses_everything():
    s = link.Session(None, lambda n: bytes(n))
    nonce = s.start()
    with pytest.raises(AuthError, match="no key"):
        s.check(parsed(frame(1, "program", "{}", KEY, nonce)))


def test_replies_are_ascii_even_with_units_in_the_reason():
    from pump import jsonfx

    text = jsonfx.dumps({"reason": "2400 µg/day is above 2000 µg/day"})
    assert text.isascii() and json.loads(text)["reason"] == "2400 µg/day is above 2000 µg/day"
