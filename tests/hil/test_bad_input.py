"""Bad input gets a clear error and changes nothing."""

import zlib

import pytest

from .helpers import RawLine, run_cli

from pumpsim import frames
from pumpsim.errors import Refused
from pumpsim.hil.verify import DAY_MS, check_delivered, continuous_volume_nl

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")


def therapy(status):
    keep = ("state", "mode", "reservoir_nl", "delivered_nl", "daily_dose_ug",
            "concentration_ug_per_ml", "alarms")
    return {k: status[k] for k in keep}


@pytest.fixture
def programmed(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    return bench, client, therapy(client.status())


def pumpsim(bench, *args):
    return run_cli(bench, *args, ok=False)


def unsigned(seq, verb, payload, mac=None):
    """A request frame as a stranger would write it: no MAC, or one made up."""
    body = frames.request(seq, verb, payload).rsplit(b"*", 1)[0]
    if mac is not None:
        body += b" #" + mac.encode("ascii")
    return body + b"*" + frames.crc_hex(body).encode("ascii") + b"\n"


def test_therapy_change_without_the_key_is_refused(programmed):
    # Written straight onto the line, the frames reach the firmware: the refusal is the board's,
    # not the client's.
    bench, client, before = programmed
    failures = client.status()["auth_failures"]
    strangers = [
        (101, "program", {"mode": "continuous", "daily_dose_ug": 900}, None),
        (102, "refill", {"volume_ul": 40_000, "concentration_ug_per_ml": 2000}, None),
        (103, "maintenance", {}, None),
        (104, "bolus", {"dose_ug": 50, "minutes": 10}, "0" * 64),
    ]
    line = RawLine(bench)
    try:
        line.write(frames.request(100, "hello", {}))
        assert line.reply().seq == 100  # a session: what fails below is the MAC, not its absence
        for seq, verb, payload, mac in strangers:
            line.write(unsigned(seq, verb, payload, mac))
            reply = line.reply()
            assert (reply.seq, reply.verb, reply.payload["code"]) == (seq, "err", "E_AUTH"), verb
    finally:
        line.close()
    status = client.status()  # still the application answering: maintenance did not happen
    assert status["auth_failures"] == failures + len(strangers)
    assert therapy(status) == before
    start = bench.rig.measure()["delivered_nl"]
    bench.advance_days(1)
    check_delivered(bench.rig.measure()["delivered_nl"] - start, continuous_volume_nl(500, 2000, DAY_MS), 500)


def test_a_wrong_key_is_refused(programmed):
    from pumpsim.client import PumpClient

    bench, client, before = programmed
    impostor = PumpClient.open(bench.port, key=bytes(32))
    try:
        with pytest.raises(Refused) as refused:
            impostor.program_continuous(daily_dose_ug=900)
        assert refused.value.code == "E_AUTH"
    finally:
        impostor.close()
    assert therapy(client.status()) == before


@pytest.mark.parametrize("dose", [0, -5])
def test_impossible_doses_are_refused_by_the_firmware(programmed, dose):
    bench, client, before = programmed
    with pytest.raises(Refused) as refused:
        client.program_continuous(daily_dose_ug=dose)
    assert refused.value.code in ("E_ARG", "E_LIMIT")
    assert therapy(client.status()) == before


def test_zero_concentration_is_refused_by_the_firmware(programmed):
    bench, client, before = programmed
    with pytest.raises(Refused):
        client.refill(volume_ul=20_000, concentration_ug_per_ml=0)
    assert therapy(client.status()) == before


@pytest.mark.parametrize("args, words", [
    (["program", "continuous", "--daily-dose-ug", "0"], "dose"),
    (["program", "continuous", "--daily-dose-ug", "-5"], "dose"),
    (["refill", "--volume-ml", "20", "--concentration-ug-per-ml", "0"], "concentration"),
    (["rig", "advance", "abc"], "abc"),
    (["frobnicate"], "frobnicate"),
])
def test_the_cli_refuses_bad_input_with_one_line(programmed, args, words):
    bench, client, before = programmed
    result = pumpsim(bench, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines and words in lines[-1]
    assert therapy(client.status()) == before


def with_crc(body):
    return body + b"*" + b"%08x" % zlib.crc32(body) + b"\n"


# Each line, and the code of its one reply. A frame that cannot be trusted is answered with seq 0;
# a frame that can, with its own seq.
GARBAGE = [
    (b"\x03\x03\x04\x01\x02\x1a\x00\xff garbage \x03\n", 0, "E_FRAME"),
    (b">1 program {\"mode\":\"continuous\",\"daily_dose_ug\":900}*00000000\n", 0, "E_CRC"),
    (with_crc(b">2 warp {}"), 2, "E_UNKNOWN"),
    (with_crc(b">3 program {\"mode\":\"continuous\",\"daily_dose_ug\":900}"), 3, "E_AUTH"),
    # A REPL tool's Ctrl-C, Ctrl-C, Enter: ended by \r, as a terminal's Enter, it is answered too.
    (b"\r\x03\x03\r", 0, "E_FRAME"),
] + [(chunk + b"\n", 0, "E_FRAME") for chunk in (bytes(range(256)) * 4).replace(b"\r", b"\n").split(b"\n")]


def test_garbage_and_control_bytes_never_stop_the_pump(programmed):
    bench, client, before = programmed
    pulses = bench.rig.measure()["pulses"]
    line = RawLine(bench)
    try:
        for data, seq, code in GARBAGE:
            line.write(data)
            reply = line.reply()
            assert reply is not None, data[:40]
            assert (reply.seq, reply.verb, reply.payload["code"]) == (seq, "err", code), data[:40]
        assert line.reply(timeout_s=0.5) is None  # one reply per line, none left over
        line.write(with_crc(b">4 status {}"))
        answer = line.reply()
        assert (answer.seq, answer.verb) == (4, "ok")
    finally:
        line.close()
    assert therapy(client.status()) == before
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == pulses + 500
    after = therapy(client.status())
    assert after["daily_dose_ug"] == 500 and after["state"] == "infusing"
