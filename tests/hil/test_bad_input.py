"""Bad input gets a clear error and changes nothing."""

import time

import pytest

from .helpers import run_cli
import serial

from pumpsim.errors import PumpsimError, Refused

pytestmark = pytest.mark.stepped


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


def test_therapy_change_without_the_key_is_refused(programmed):
    bench, client, before = programmed
    stranger = bench.client(key=False)
    with pytest.raises(PumpsimError):
        stranger.program_continuous(daily_dose_ug=900)
    with pytest.raises(PumpsimError):
        stranger.refill(volume_ul=40_000, concentration_ug_per_ml=2000)
    assert therapy(client.status()) == before


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


def test_garbage_and_control_bytes_never_stop_the_pump(programmed):
    bench, client, before = programmed
    pulses = bench.rig.measure()["pulses"]
    line = serial.serial_for_url(bench.port, timeout=0.1)
    try:
        line.write(b"\x03\x03\x04\x01\x02\x1a\x00\xff garbage \x03\n")
        line.write(b">1 program {\"mode\":\"continuous\",\"daily_dose_ug\":900}*00000000\n")
        line.write(b">2 warp {}*" + b"%08x" % __import__("zlib").crc32(b">2 warp {}") + b"\n")
        line.write(bytes(range(256)) * 4 + b"\n")
        time.sleep(0.5)
        replies = line.read(65536).decode("ascii", "replace")
    finally:
        line.close()
    assert "E_CRC" in replies
    assert "E_UNKNOWN" in replies
    assert "E_FRAME" in replies
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == pulses + 500
    after = therapy(client.status())
    assert after["daily_dose_ug"] == 500 and after["state"] == "infusing"
