"""The firmware on official MicroPython for the Pico, in rp2040js, measured by the rig on the
Pico's pins: GP2 counted, GP3 driven, ADC0 set, GP15 listened to (boards/rpi_pico/wiring.csv)."""

import json
import time

import pytest
import serial

import pumpsim

from pumpsim.errors import Refused
from pumpsim.hil.rig import Rig, RigError

from .conftest import CLIENT_TIMEOUT_S, cli, read_until, repl_prompt, wait_for

pytestmark = pytest.mark.timeout(900)

DAILY_DOSE_UG = 1200
CONCENTRATION_UG_PER_ML = 50
# 1200 µg/day of 50 µg/mL is 24 mL/day: 96 000 strokes of 250 nL a day, 1.11 a second.
RATE_NL_PER_DAY = DAILY_DOSE_UG * 1_000_000 // CONCENTRATION_UG_PER_ML
DAY_MS = 86_400_000


def infusing(pico, fill_ml=20):
    client = pico.client(timeout=CLIENT_TIMEOUT_S)
    client.refill(fill_ml * 1000, CONCENTRATION_UG_PER_ML)
    client.program_continuous(DAILY_DOSE_UG)
    return client


def pulses_reach(rig, count):
    def check():
        m = rig.measure()
        return m if m["pulses"] >= count else None
    return check


def test_a_blank_pico_boots_to_the_repl_on_its_pty(tmp_path):
    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    started = time.monotonic()
    info = rp2040js.start(tmp_path / "blank")
    try:
        banner = repl_prompt(info["port"])
        print("boot to the REPL: %.2f s" % (time.monotonic() - started))
        assert b"MicroPython v1.28.0" in banner and b"Raspberry Pi Pico with RP2040" in banner
        with serial.Serial(info["port"], timeout=0.2) as port:
            port.write(b"import sys; print(sys.platform, 6 * 7)\r")
            assert b"rp2 42" in read_until(port, b"rp2 42", 60)
            # The pty is raw: 0x03 reaches the chip as data, where the REPL makes it Ctrl-C.
            port.write(b"while True: pass\r\r")
            time.sleep(1.0)
            port.write(b"\x03")
            assert b"KeyboardInterrupt" in read_until(port, b"KeyboardInterrupt", 60)
        with Rig.open(info["rig"], timeout_s=CLIENT_TIMEOUT_S) as rig:
            assert rig.hello() == {"rig": "rp2040js", "proto": 1, "clock": "realtime", "board": "rpi_pico",
                                  "can": ["reset", "power-cut", "power-cut-mid-write", "motor-stall",
                                          "battery", "tones", "corrupt-flash", "boot-count"]}
            assert rig.time()["clock"] == "realtime"
            for request, reason in [("advance 1000", "real time"), ("clock stepped", "real time"),
                                    ("hang", "main loop"), ("power-cycle 0", "FRAM write"),
                                    ("corrupt-flash state", "no records yet"), ("rtc kept", "restarts at every")]:
                with pytest.raises(RigError, match=reason):
                    rig.request(request)
            assert rig.rtc()["rtc"] == rig.rtc("volatile")["rtc"] == "volatile"
            assert rig.measure()["pulses"] == 0
    finally:
        supervisor.stop(tmp_path / "blank")
    # The flash was kept (MicroPython formatted its filesystem on the first boot).
    assert (tmp_path / "blank" / "flash.bin").stat().st_size == 2 * 1024 * 1024


def test_status_and_a_refusal_without_the_key(pico):
    from pumpsim.client import PumpClient

    status = pico.client(key=False, timeout=CLIENT_TIMEOUT_S).status()
    assert (status["board"], status["stroke_nl"], status["fw"]) == ("rpi_pico", 250, pumpsim.__version__)
    assert status["state"] in ("alarm", "idle")
    impostor = PumpClient.open(pico.port, key=bytes(32), timeout=CLIENT_TIMEOUT_S)
    try:
        with pytest.raises(Refused) as refused:
            impostor.program_continuous(daily_dose_ug=900)
        assert refused.value.code == "E_AUTH"
    finally:
        impostor.close()
    after = pico.client(timeout=CLIENT_TIMEOUT_S).status()
    assert after["auth_failures"] == 1 and after["mode"] == status["mode"]
    assert pico.rig.measure()["pulses"] == 0


def test_continuous_delivery_is_what_the_rig_counts(pico):
    infusing(pico)
    start = pico.rig.measure()
    wall_start = time.monotonic()
    end = wait_for(pulses_reach(pico.rig, start["pulses"] + 100), 600, "100 strokes", interval_s=2.0)
    wall_s = time.monotonic() - wall_start
    elapsed_ms = end["clock_ms"] - start["clock_ms"]
    strokes = end["pulses"] - start["pulses"]
    # What should have gone out in that time, from the programme alone.
    expected_strokes = RATE_NL_PER_DAY * elapsed_ms / DAY_MS / end["stroke_nl"]
    print("%d strokes in %.1f s of pump time (%.1f s wall): %.2f strokes/s, %.1f expected"
          % (strokes, elapsed_ms / 1000, wall_s, strokes * 1000 / elapsed_ms, expected_strokes))
    assert abs(strokes - expected_strokes) <= 2
    assert end["delivered_nl"] == end["pulses"] * 250
    # Real time: the chip's clock never runs ahead of the wall clock.
    assert elapsed_ms <= wall_s * 1000 + 1000
    status = pico.client(timeout=CLIENT_TIMEOUT_S).status()
    assert status["state"] == "infusing"
    # The firmware counts a stroke before it pulses: at most one ahead of the rig.
    assert 0 <= status["strokes"] - end["pulses"] <= 2


def test_a_power_cut_keeps_the_flash_and_therapy_resumes(pico):
    from pumpsim.targets.emu import supervisor

    infusing(pico)
    before = wait_for(pulses_reach(pico.rig, 5), 300, "5 strokes")
    cut = pico.rig.power_cycle()
    assert cut["power"] == "cycled"
    measured = pico.rig.measure()
    assert (measured["power_cuts"], measured["boots"]) == (1, 2)
    assert measured["pulses"] >= before["pulses"]
    status = wait_for(lambda: _status(pico), 300, "the pump answering after the power cut")
    assert status["state"] == "infusing" and status["daily_dose_ug"] == DAILY_DOSE_UG
    assert status["reset_cause"] == "power-on"
    resumed = wait_for(pulses_reach(pico.rig, measured["pulses"] + 5), 300, "5 strokes after the cut")
    # The target restarted: the flash (and the rig's count) come back from DIR.
    assert supervisor.stop(pico.dir) and not (pico.dir / "emu.json").exists()
    info = json.loads(cli("emu", "start", "--target", "rp2040js", "--dir", str(pico.dir)))
    with Rig.open(info["rig"], timeout_s=CLIENT_TIMEOUT_S) as rig:
        again = rig.measure()
        assert again["pulses"] >= resumed["pulses"] and again["power_cuts"] == 1
        # The rig's trace, each stroke's time, came back with the count, across the cut too.
        strokes = rig.trace()
        assert again["pulses"] <= len(strokes) <= rig.measure()["pulses"]
        assert strokes == sorted(strokes) and strokes[len(strokes) - 1] >= cut["clock_ms"] >= strokes[4]
    pico.port = info["port"]
    pico.rig.close()
    pico.rig = Rig.open(info["rig"], timeout_s=CLIENT_TIMEOUT_S)
    status = wait_for(lambda: _status(pico), 300, "the pump answering after the restart")
    assert status["state"] == "infusing" and status["strokes"] >= again["pulses"]


def _status(pico):
    from pumpsim.client import PumpClient
    from pumpsim.errors import PumpsimError

    try:
        with PumpClient.open(pico.port, key=pico.key, timeout=CLIENT_TIMEOUT_S) as client:
            return client.status()
    except PumpsimError:
        return None


def test_a_motor_stall_on_the_feedback_pin_stops_counting_and_sounds(pico):
    infusing(pico)
    wait_for(pulses_reach(pico.rig, 2), 300, "2 strokes")
    assert pico.rig.stall("on") == {"stall": "on"}
    stalled = pico.rig.measure()
    client = pico.client(timeout=CLIENT_TIMEOUT_S)
    alarms = wait_for(lambda: [a for a in client.alarms() if a["code"] == "MOTOR_STALL"], 120,
                      "the MOTOR_STALL alarm", interval_s=2.0)
    after = pico.rig.measure()
    # The firmware tried the motor (three rising edges on GP2); none turned it, none counted.
    assert after["step_edges"] - stalled["step_edges"] >= 3
    assert after["pulses"] - stalled["pulses"] <= 1  # a stroke under way when the stall came
    assert alarms[0]["pattern"] == "two-tone"
    # The buzzer on GP15: the rig's microphone hears a two-tone sound after the stall.
    tones = wait_for(lambda: [t for t in pico.rig.tones()
                              if t["t_ms"] >= stalled["clock_ms"] and t["pattern"] == "two-tone"],
                     60, "a two-tone sound")
    assert len(tones[0]["freqs"]) == 2 and all(200 <= f <= 10000 for f in tones[0]["freqs"])
    assert tones[0]["duration_ms"] > 0


def test_the_battery_on_adc0_is_what_the_rig_sets(pico):
    assert pico.rig.battery()["battery_mv"] == 3200
    status = pico.client(timeout=CLIENT_TIMEOUT_S).status()
    assert abs(status["battery_volts"] - 3.2) <= 0.005
    assert pico.rig.battery(2800) == {"battery_mv": 2800}
    # The firmware reads its battery at boot and hourly: reset it (the RUN pin) to read it now.
    assert pico.rig.reset()["reset"] == "hard"
    status = wait_for(lambda: _status(pico), 300, "the pump answering after the reset")
    assert abs(status["battery_volts"] - 2.8) <= 0.005
    assert "BATTERY_ERI" in [a["code"] for a in status["alarms"]]
    measured = pico.rig.measure()
    assert (measured["resets"], measured["power_cuts"], measured["boots"]) == (1, 0, 2)


def test_from_blank_flash_deploy_then_provision_as_documented(tmp_path):
    """docs/usage.md's order on a new Pico: the firmware first (make flash runs `pumpsim
    deploy`), then keygen and provision; a pump with no key leaves the line to the REPL, so
    provision reaches it, and the pump then answers with the key."""
    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    from .conftest import pump_answers

    board = tmp_path / "blank"
    info = rp2040js.start(board)
    try:
        cli("deploy", "--board", "rpi_pico", "--port", info["port"])
        with serial.Serial(info["port"], timeout=0.2) as port:
            port.write(b"\r")
            seen = read_until(port, b">>> ", 120)
        key_file = tmp_path / "pico.key"
        cli("keygen", str(key_file))
        cli("provision", "--port", info["port"], "--key", str(key_file))
        key = bytes.fromhex(key_file.read_text().strip())
        status = wait_for(lambda: pump_answers(info["port"], key), 300, "the pump answering with its key")
        assert status["board"] == "rpi_pico" and status["reset_cause"] == "commanded"
    finally:
        supervisor.stop(board)
    assert b"no key is provisioned" in seen and b"Traceback" not in seen


SQUARE_WAVE = """
import rp2, time
from machine import Pin

@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def square():
    set(pins, 1) [24]
    set(pins, 0) [24]

for hz in (100_000, 62_500):
    sm = rp2.StateMachine(0, square, freq=hz, set_base=Pin(%d))
    sm.active(1)
    time.sleep_ms(400)
    sm.active(0)
print("played")
"""


def test_the_pio_runs_on_the_chips_clock_with_its_divider_and_delays(tmp_path):
    """A PIO square wave on the buzzer pin, 50 state-machine cycles a period (two instructions of
    1 + 24 cycles), at 100 kHz then 62.5 kHz from the 125 MHz system clock (dividers 1250 and
    2000): the rig hears 2000 Hz then 1250 Hz. A PIO stepped by node's timers, or one that ignores
    the divider or the delays, plays neither."""
    import csv
    import subprocess
    import sys

    import pumpsim.boards.rpi_pico
    from pathlib import Path

    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    board = Path(pumpsim.boards.rpi_pico.__file__).parent
    with open(board / "pins.csv", newline="") as f:
        buzzer = {row["role"]: int(row["pin"]) for row in csv.DictReader(f)}["BUZZER"]
    info = rp2040js.start(tmp_path / "blank")
    try:
        repl_prompt(info["port"])
        run = subprocess.run([sys.executable, "-m", "mpremote", "connect", info["port"], "exec",
                              SQUARE_WAVE % buzzer], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0 and "played" in run.stdout, run.stdout + run.stderr
        with Rig.open(info["rig"], timeout_s=CLIENT_TIMEOUT_S) as rig:
            sounds = wait_for(lambda: rig.tones() or None, 60, "the square wave heard")
    finally:
        supervisor.stop(tmp_path / "blank")
    assert [s["freqs"] for s in sounds] == [[2000, 1250]], sounds
    assert 700 <= sounds[0]["duration_ms"] <= 900, sounds
