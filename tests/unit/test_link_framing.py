"""The firmware side of the serial protocol: framing, CRC, HMAC, sessions. Every line that ends
gets exactly one reply; whatever is refused changes nothing."""

import hashlib
import hmac
import random
import zlib

import pytest

from pump import link
from pump.errors import CrcError, FrameError

from .conftest import KEY
from .fakes import frame, signed
from .helpers import Bench


def with_crc(body):
    return body + b"*%08x\n" % zlib.crc32(body)


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path / "data").infusing()


BAD_LINES = [
    ("garbage", b"hello pump\n", "E_FRAME"),
    ("Ctrl-C alone", b"\x03\n", "E_FRAME"),
    ("Ctrl-C in a frame", with_crc(b">9 status {\x03}"), "E_FRAME"),
    ("NUL in a frame", with_crc(b">9 status {}\x00"), "E_FRAME"),
    ("escape in a frame", with_crc(b">9 sta\x1btus {}"), "E_FRAME"),
    ("DEL in a frame", with_crc(b">9 status {}\x7f"), "E_FRAME"),
    ("non-ASCII in a frame", with_crc(">9 status {\"a\":\"µ\"}".encode()), "E_FRAME"),
    ("too long", with_crc(b">9 status {\"pad\":\"" + b"x" * 2040 + b"\"}"), "E_FRAME"),
    ("bad CRC", b">9 status {}*00000000\n", "E_CRC"),
    ("CRC of another body", b">9 status {}*%08x\n" % zlib.crc32(b">8 status {}"), "E_CRC"),
    ("missing *", b">9 status {}\n", "E_FRAME"),
    ("short CRC", b">9 status {}*1234567\n", "E_FRAME"),
    ("JSON list", with_crc(b">9 status [1]"), "E_FRAME"),
    ("JSON number", with_crc(b">9 status 1"), "E_FRAME"),
    ("JSON string", with_crc(b'>9 status "x"'), "E_FRAME"),
    ("JSON null", with_crc(b">9 status null"), "E_FRAME"),
    ("not JSON", with_crc(b">9 status {nope"), "E_FRAME"),
    ("no payload", with_crc(b">9 status"), "E_FRAME"),
    ("no verb", with_crc(b">9  {}"), "E_FRAME"),
    ("seq not a number", with_crc(b">x9 status {}"), "E_FRAME"),
    ("seq beyond 32 bits", with_crc(b">4294967296 status {}"), "E_FRAME"),
]


@pytest.mark.parametrize("name, line, code", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_a_bad_line_gets_one_error_with_seq_0_and_changes_nothing(bench, name, line, code):
    therapy, flash = bench.therapy(), bench.flash()
    replies = bench.send(line)
    assert [(kind, seq, verb, payload["code"], ok) for kind, seq, verb, payload, ok in replies] == \
        [("<", 0, "err", code, True)]
    assert bench.therapy() == therapy and bench.flash() == flash


def test_the_longest_frame_passes_and_one_byte_more_does_not(bench):
    def padded(n):
        body = b'>9 status {"pad":"' + b"x" * n + b'"}'
        return with_crc(body)

    n = 2048 - len(padded(0).rstrip(b"\n"))
    assert len(padded(n).rstrip(b"\n")) == 2048
    assert bench.send(padded(n))[0][2] == "ok"
    assert bench.send(padded(n + 1))[0][3]["code"] == "E_FRAME"


def test_noise_before_a_frame_is_dropped_and_counted(bench):
    before = bench.app.status()["noise_bytes"]
    (reply,) = bench.send(b"\x03\x03\x00zz" + frame(9, "status"))
    assert reply[:3] == ("<", 9, "ok")
    assert bench.app.status()["noise_bytes"] == before + 5


def test_empty_lines_get_no_reply(bench):
    assert bench.send(b"\n\r\n\n") == []


def test_a_frame_split_into_single_bytes_is_the_same_frame(bench):
    data = b"noise\n" + frame(7, "status") + b"\r\n" + frame(8, "hello")
    whole = [r[:3] for r in bench.send(data)]
    pieces = []
    for i in range(len(data)):
        pieces += [r[:3] for r in bench.send(data[i:i + 1])]
    assert whole == pieces == [("<", 0, "err"), ("<", 7, "ok"), ("<", 8, "ok")]


def test_crlf_is_accepted(bench):
    assert bench.send(frame(9, "status").replace(b"\n", b"\r\n"))[0][:3] == ("<", 9, "ok")


def test_parse_errors_are_frame_errors_the_crc_one_its_own():
    assert issubclass(CrcError, FrameError)
    assert CrcError.code == "E_CRC" and FrameError.code == "E_FRAME"


# -- what the pump sends ----------------------------------------------------------------------

def test_replies_and_events_carry_a_valid_crc_and_exact_fixed_point_volumes():
    from pump.jsonfx import Milli

    line = link.encode("<", 12, "ok", {"reservoir_ul": Milli(19_999_999), "small": Milli(1),
                                       "zero": Milli(0), "neg": Milli(-1500), "flag": True,
                                       "none": None, "list": [1, "a"], "text": "2000 µg/mL"})
    assert line.endswith(b"\n") and line.isascii()
    body, crc = line[:-1].rsplit(b"*", 1)
    assert crc == b"%08x" % zlib.crc32(body)
    assert body.startswith(b"<12 ok {")
    assert b'"reservoir_ul":19999.999' in body and b'"small":0.001' in body
    assert b'"zero":0.000' in body and b'"neg":-1.500' in body


# -- authentication ---------------------------------------------------------------------------

def test_hmac_matches_pythons_hmac_module():
    rng = random.Random(1)
    for key_len in (0, 1, 16, 32, 63, 64, 65, 130):
        for msg_len in (0, 1, 55, 56, 64, 200):
            key, msg = rng.randbytes(key_len), rng.randbytes(msg_len)
            assert link.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_same_compares_everything_whatever_the_first_difference():
    assert link.same(b"abc", b"abc") and link.same(b"", b"")
    assert not link.same(b"abc", b"abd") and not link.same(b"xbc", b"abc")
    assert not link.same(b"abc", b"abcd")


def test_a_signed_request_is_accepted_once_and_replays_are_refused(bench):
    program = '{"mode":"continuous","daily_dose_ug":600}'
    first = signed(KEY, bench.nonce, 50, "program", program)
    assert bench.send(first)[0][2] == "ok"
    failures = bench.app.status()["auth_failures"]
    therapy, flash = bench.therapy(), bench.flash()
    for replay in (first, signed(KEY, bench.nonce, 49, "program", program),
                   signed(KEY, bench.nonce, 50, "program", '{"mode":"stop"}')):
        (reply,) = bench.send(replay)
        assert reply[2] == "err" and reply[3]["code"] == "E_REPLAY"
    assert bench.therapy() == therapy and bench.flash() == flash
    assert bench.app.status()["auth_failures"] == failures + 3
    assert bench.send(signed(KEY, bench.nonce, 51, "program", program))[0][2] == "ok"


@pytest.mark.parametrize("how", ["no MAC", "wrong key", "old nonce", "payload changed after signing"])
def test_an_unauthenticated_change_is_refused_and_counted(bench, how):
    program = '{"mode":"continuous","daily_dose_ug":900}'
    old_nonce = bench.nonce
    bench.hello()
    data = {
        "no MAC": frame(60, "program", program),
        "wrong key": signed(bytes(32), bench.nonce, 60, "program", program),
        "old nonce": signed(KEY, old_nonce, 60, "program", program),
        "payload changed after signing": with_crc(
            signed(KEY, bench.nonce, 60, "program", program).rsplit(b"*", 1)[0].replace(b":900}", b":990}")),
    }[how]
    therapy, flash = bench.therapy(), bench.flash()
    (reply,) = bench.send(data)
    assert reply[1:3] == (60, "err") and reply[3]["code"] == "E_AUTH"
    assert bench.therapy() == therapy and bench.flash() == flash
    assert bench.app.status()["auth_failures"] == 1


def test_the_nonce_is_32_hex_digits_and_new_at_every_hello(bench):
    nonces = {bench.hello()["nonce"] for _ in range(5)}
    assert len(nonces) == 5
    assert all(len(n) == 32 and all(c in "0123456789abcdef" for c in n) for n in nonces)
