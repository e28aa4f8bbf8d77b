"""The virtual board behaves like a board on USB: REPL tools work, resets restart it, the rig
counts every pulse and owns time."""

import os
import time

import pytest
import serial

from pumpsim.targets.emu import supervisor
from pumpsim.targets.emu.flashfs import FlashFiles
from pumpsim.hil.rig import RigError

from .conftest import mpremote, read_for, wait_for

DAY_MS = 86_400_000


def test_stepped_time_counts_every_pulse(toy_board):
    info, rig = toy_board
    assert rig.time()["clock_ms"] == 0
    assert rig.advance(10 * DAY_MS)["clock_ms"] == 10 * DAY_MS
    assert rig.measure()["pulses"] == 5000
    rig.advance(172800 - 1)
    assert rig.measure()["pulses"] == 5000
    rig.advance(1)
    assert rig.measure()["pulses"] == 5001


def test_time_does_not_move_without_the_harness(toy_board):
    info, rig = toy_board
    rig.advance(DAY_MS)
    time.sleep(0.3)
    assert rig.time()["clock_ms"] == DAY_MS
    assert rig.measure()["pulses"] == 500


def test_control_bytes_are_data_to_a_running_application(toy_board, line):
    info, rig = toy_board
    rig.advance(1000)
    line.write(b"\x03\x04\x01\x02")
    out = read_for(line, 0.5)
    assert out.count(b"got ") == 4, out
    assert out.startswith(b"got 3 at ")
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == 500


def test_mpremote_lists_flash_after_the_application_returns(toy_board, line):
    info, rig = toy_board
    line.write(b"q")
    assert b">>> " in read_for(line, 0.5)
    line.close()
    listing = mpremote(info["port"], "fs", "ls")
    assert listing.returncode == 0, listing.stderr
    assert "main.py" in listing.stdout


def test_a_soft_reset_from_the_raw_repl_stays_in_the_repl_as_on_a_pico(toy_board, line):
    """mpremote soft-resets in the raw REPL, where main.py does not run; `mpremote reset` and
    Ctrl-D at the friendly prompt run it."""
    info, rig = toy_board
    line.write(b"q")
    read_for(line, 0.3)
    line.close()
    assert mpremote(info["port"], "fs", "ls").returncode == 0
    before = rig.measure()["pulses"]
    reset = mpremote(info["port"], "soft-reset")
    assert reset.returncode == 0, reset.stderr
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == before  # in the REPL: no strokes
    with serial.serial_for_url(info["port"], timeout=0.05) as port:
        port.write(b"\r\x04")  # Ctrl-D at the friendly prompt
        read_for(port, 0.3)
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == before + 500
    with serial.serial_for_url(info["port"], timeout=0.05) as port:
        port.write(b"q")
        read_for(port, 0.3)
    boots = rig.measure()["boots"]
    assert mpremote(info["port"], "reset").returncode == 0
    # mpremote soft-resets into the raw REPL, then returns at once: the board resets 100 ms later,
    # in real time.
    wait_for(lambda: rig.measure()["boots"] == boots + 2, 5, "the reset")
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == before + 1000


def test_what_the_board_printed_before_a_reset_reaches_the_host(toy_board, line):
    """mpremote's `reset` waits for the byte that closes its paste, printed just before the
    reset: the virtual board must not drop output the board had already sent."""
    info, rig = toy_board
    for attempt in range(3):  # the output raced the reset: each attempt could lose it
        line.write(b"q")  # the toy application returns to the REPL
        read_for(line, 0.3)
        line.write(b"import machine; print('A' * 30000 + '!'); machine.reset()\r")
        out = read_for(line, 1.5)
        assert out.count(b"A") - 1 == 30000 and b"A!" in out, (attempt, out.count(b"A"), out[-200:])
    assert rig.measure()["boots"] == 4


def test_pulses_survive_a_power_cycle(toy_board):
    info, rig = toy_board
    rig.advance(DAY_MS)
    rig.power_cycle()
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == 1000


def test_pulses_and_time_survive_a_supervisor_restart(toy_board, tmp_path):
    info, rig = toy_board
    rig.advance(DAY_MS)
    rig.close()
    directory = tmp_path / "board"
    supervisor.stop(directory)
    again = supervisor.start(directory)
    from pumpsim.hil.rig import Rig
    with Rig.open(again["rig"]) as rig2:
        assert rig2.measure()["pulses"] == 500
        assert rig2.time()["clock_ms"] == DAY_MS


def test_the_trace_holds_every_counted_stroke_at_its_pump_time(toy_board, tmp_path):
    info, rig = toy_board
    rig.advance(DAY_MS)
    rig.power_cycle()  # the toy restarts its schedule from the power-up: 172.8 s after it
    rig.advance(DAY_MS)
    rig.request("stall on")
    rig.advance(DAY_MS // 10)  # attempts that did not turn the motor: not strokes, not traced
    rig.request("stall off")
    # Pages of at most 5000: 10,001 strokes come in three.
    rig.advance(18 * DAY_MS + 172_800)
    measured = rig.measure()
    strokes = rig.trace()
    first_day = [172_800 * k for k in range(1, 501)]
    assert strokes[:500] == first_day
    assert strokes[500:1000] == [DAY_MS + ms for ms in first_day]
    stalled = (2 * DAY_MS, 2 * DAY_MS + DAY_MS // 10)
    assert not [ms for ms in strokes if stalled[0] < ms <= stalled[1]]
    assert len(strokes) == measured["pulses"] == 10_001
    assert strokes == sorted(strokes) and strokes[-1] == measured["last_pulse_ms"]
    assert rig.request("trace 10000") == {"from": 10000, "strokes_ms": strokes[10000:], "total": 10_001,
                                          "untimed": 0}
    with pytest.raises(RigError, match="whole number from 0"):
        rig.request("trace -1")
    # A restart of the rig keeps the trace, as it keeps the count.
    rig.close()
    supervisor.stop(tmp_path / "board")
    again = supervisor.start(tmp_path / "board")
    from pumpsim.hil.rig import Rig
    with Rig.open(again["rig"]) as rig2:
        assert rig2.trace() == strokes
        rig2.advance(172_800)
        assert rig2.trace()[:-1] == strokes and rig2.measure()["pulses"] == len(strokes) + 1


def test_a_trace_longer_than_the_saved_count_is_cut_to_it(toy_board, tmp_path):
    info, rig = toy_board
    rig.advance(DAY_MS)
    rig.close()
    directory = tmp_path / "board"
    supervisor.stop(directory)
    # As a rig killed between saving the trace and its count leaves them: 3 times too many.
    with open(directory / supervisor.TRACE, "ab") as f:
        f.write((999_999_999).to_bytes(8, "little") * 3)
    again = supervisor.start(directory)
    from pumpsim.hil.rig import Rig
    with Rig.open(again["rig"]) as rig2:
        assert rig2.trace() == [172_800 * k for k in range(1, 501)]
    assert (directory / supervisor.TRACE).stat().st_size == 500 * 8


def test_a_second_board_in_the_same_folder_is_refused(toy_board, tmp_path):
    with pytest.raises(supervisor.EmuError, match="already runs"):
        supervisor.start(tmp_path / "board")


@pytest.mark.parametrize("request_line, reason", [
    ("advance abc", "whole number"),
    ("advance -5", "backwards"),
    ("clock x0", "clock mode"),
    ("warp 9", "unknown rig request"),
    ("stall next", "whole number from 1"),
    ("stall next 0", "whole number from 1"),
    ("stall next -2", "whole number from 1"),
    ("stall next two", "whole number from 1"),
    ("stall sometimes", "next N"),
])
def test_bad_rig_requests_are_refused_and_change_nothing(toy_board, request_line, reason):
    info, rig = toy_board
    rig.advance(1000)
    with pytest.raises(RigError, match=reason):
        rig.request(request_line)
    assert rig.time() == {"clock_ms": 1000, "clock": "stepped"}


def test_scaled_clock_runs_by_itself(toy_board):
    info, rig = toy_board
    rig.clock("x100")  # 100 s of pump time per wall second
    time.sleep(0.5)
    now_ms = rig.time()["clock_ms"]
    assert 20_000 < now_ms < 200_000
    rig.clock("stepped")
    frozen = rig.time()["clock_ms"]
    time.sleep(0.2)
    assert rig.time()["clock_ms"] == frozen


def test_stop_ends_the_board_and_its_folder_records_it(toy_board, tmp_path):
    directory = tmp_path / "board"
    assert supervisor.stop(directory) is True
    assert not (directory / "emu.json").exists()
    assert supervisor.info(directory) is None
    assert supervisor.stop(directory) is False


def test_mpremote_run_and_cp_work_in_the_repl(toy_board, line, tmp_path):
    info, rig = toy_board
    line.write(b"q")
    read_for(line, 0.3)
    line.close()
    script = tmp_path / "hello.py"
    script.write_text("import os, machine\nprint('flash:', sorted(os.listdir()))\nprint(machine.unique_id())\n")
    ran = mpremote(info["port"], "run", str(script))
    assert ran.returncode == 0, ran.stderr
    assert "flash: ['main.py']" in ran.stdout
    copied = mpremote(info["port"], "fs", "cp", str(script), ":hello.py", "+", "fs", "cat", ":hello.py")
    assert copied.returncode == 0 and "print('flash:'" in copied.stdout
    # On the board's flash, where the host reads it once the board is off.
    supervisor.stop(tmp_path / "board")
    assert FlashFiles(tmp_path / "board").read("hello.py") == script.read_bytes()


SPINNER = """
import machine, select, sys, micropython
micropython.kbd_intr(-1)
wdt = machine.WDT(timeout=8000)
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
while True:
    wdt.feed()
    if poll.poll(1000) and sys.stdin.buffer.read(1) == b'h':
        while True:  # a firmware bug: spins, never feeds, never talks to its wires
            pass
"""


def test_a_spinning_application_is_reset_by_its_watchdog(tmp_path):
    import serial

    from pumpsim.hil.rig import Rig

    directory = tmp_path / "spin"
    FlashFiles(directory).write("main.py", SPINNER)
    info = supervisor.start(directory)
    try:
        with Rig.open(info["rig"]) as rig:
            rig.advance(5000)
            boots = rig.measure()["boots"]
            with serial.serial_for_url(info["port"]) as line:
                line.write(b"h")
            # The byte and the rig's request travel apart: let the board take the byte first, or
            # a loaded machine may grant the time before the board starts to spin.
            time.sleep(0.5)
            started = time.monotonic()
            rig.advance(60_000)  # cannot pass while the board spins, until the watchdog resets it
            assert rig.measure()["boots"] == boots + 1
            assert time.monotonic() - started >= 9
    finally:
        supervisor.stop(directory)


def test_the_port_is_a_link_in_the_board_folder_to_its_pty(toy_board, tmp_path):
    """A stable path, as a Pico's /dev/ttyACM0 is, that no tool takes for an emulator's pty."""
    info, rig = toy_board
    link = tmp_path / "board" / "ttyACM0"
    assert info["port"] == os.path.abspath(link) and info["pty"].startswith("/dev/pts/")
    assert os.readlink(link) == info["pty"]
    supervisor.stop(tmp_path / "board")
    assert not os.path.lexists(link)  # no board, no port
