"""The rig's own firmware (boards/rig_pico) on official MicroPython for the Pico, in rp2040js:
deployed by `pumpsim deploy` (mpremote) onto a blank chip, as onto a second Pico on the bench, it
comes up on its USB CDC and speaks the rig protocol, its PIO state machines answering."""

import json
import time

import pytest
import serial

from .conftest import cli, read_until, repl_prompt

pytestmark = pytest.mark.timeout(900)


def ask(port, line, timeout_s=60.0):
    port.write(line.encode() + b"\n")
    seen = read_until(port, b"}\r\n", timeout_s)
    return json.loads(seen.decode().strip().splitlines()[-1])


def test_the_rig_firmware_deployed_on_an_emulated_pico_speaks_the_rig_protocol(tmp_path):
    from pumpsim.targets.emu import supervisor
    from pumpsim.targets.rp2040js import supervisor as rp2040js

    info = rp2040js.start(tmp_path / "rig", fram=False)
    try:
        repl_prompt(info["port"])
        cli("deploy", "--board", "rig_pico", "--port", info["port"])
        with serial.Serial(info["port"], timeout=0.2) as port:
            deadline = time.monotonic() + 120
            while True:  # main.py starts after the deploy's reset
                try:
                    hello = ask(port, "hello", timeout_s=5)
                    break
                except (AssertionError, ValueError):
                    assert time.monotonic() < deadline, "the rig did not answer hello"
            assert hello == {"rig": "rig_pico", "proto": 1, "clock": "realtime", "board": "rpi_pico",
                             "can": ["reset", "power-cut", "motor-stall", "battery", "tones"]}
            # measure reads the edge counter's X register through the PIO (exec, push, get):
            # a PIO that did not run would leave it waiting for ever.
            first = ask(port, "measure")
            assert (first["pulses"], first["step_edges"], first["stroke_nl"]) == (0, 0, 250)
            time.sleep(1.0)
            later = ask(port, "time")
            assert later["clock"] == "realtime" and later["clock_ms"] > first["clock_ms"]
            assert ask(port, "advance 1000")["error"].startswith("advance: this rig is hardware")
            assert ask(port, "battery 1650") == {"battery_mv": 1650, "duty": 32768}
            assert ask(port, "stall next 2") == {"stall": "next", "fail_next": 2}
            assert "unknown rig request" in ask(port, "bogus")["error"]
    finally:
        supervisor.stop(tmp_path / "rig")
