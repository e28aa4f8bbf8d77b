"""Host-side parsing of what people type and of what the pump sends."""

import hashlib
import hmac
import json
import zlib

import pytest

from pumpsim import frames, units
from pumpsim.errors import FrameError, UsageError


@pytest.mark.parametrize("text, ms", [
    ("90s", 90_000), ("15m", 900_000), ("36h", 129_600_000), ("10d", 864_000_000),
    ("1.5d", 129_600_000), ("500ms", 500), ("71.9d", 6_212_160_000), ("0s", 0),
])
def test_durations(text, ms):
    assert units.duration_ms(text) == ms


@pytest.mark.parametrize("text", ["abc", "", "10", "-5d", "1.0001ms", "d", "5 days"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        units.duration_ms(text)


@pytest.mark.parametrize("text, ul", [("20", 20_000), ("0.5", 500), ("2.125", 2125), (" 40 ", 40_000)])
def test_millilitres_to_whole_microlitres(text, ul):
    assert units.ml_to_ul(text) == ul


@pytest.mark.parametrize("text", ["abc", "0", "-1", "0.0001", "nan", "inf"])
def test_bad_volumes(text):
    with pytest.raises(UsageError):
        units.ml_to_ul(text)


@pytest.mark.parametrize("text", ["0", "-5", "2.5", "x"])
def test_bad_positive_ints(text):
    with pytest.raises(UsageError):
        units.positive_int(text, "daily dose")


def test_request_frames_carry_crc_and_mac():
    key, nonce = bytes(range(32)), "ab" * 16
    line = frames.request(7, "program", {"daily_dose_ug": 500}, key, nonce)
    assert line.endswith(b"\n")
    body, crc = line[:-1].rsplit(b"*", 1)
    assert crc == b"%08x" % zlib.crc32(body)
    signed, mac = body.rsplit(b" #", 1)
    assert mac == hmac.new(key, nonce.encode() + b" " + signed, hashlib.sha256).hexdigest().encode()
    assert signed == b'>7 program {"daily_dose_ug":500}'


def reply(kind, seq, verb, payload):
    body = ("%s%d %s %s" % (kind, seq, verb, json.dumps(payload))).encode()
    return body + b"*%08x" % zlib.crc32(body)


def test_decode_reply_event_and_noise():
    f = frames.decode(reply("<", 3, "ok", {"a": 1}))
    assert (f.kind, f.seq, f.verb, f.payload) == ("<", 3, "ok", {"a": 1})
    assert frames.decode(b">>> " + reply("!", 1, "alarm", {})).kind == "!"


@pytest.mark.parametrize("line", [
    b"", b"MicroPython v1.29", reply("<", 3, "ok", {"a": 1})[:-1] + b"0", b"<3 ok {}",
    b"<3 ok [1]*" + b"%08x" % zlib.crc32(b"<3 ok [1]"),
])
def test_decode_refuses_what_is_not_a_frame(line):
    with pytest.raises(FrameError):
        frames.decode(line)


def test_a_request_beyond_the_pump_s_frame_limit_is_refused_before_sending():
    with pytest.raises(FrameError, match="limit"):
        frames.request(1, "program", {"steps": [[i, 1000] for i in range(400)]})
