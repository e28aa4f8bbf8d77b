"""At the REPL the virtual board is a Pico to every tool on its serial line: the bytes of its
lines, Enter, Ctrl-C, Ctrl-D, time, its RTC and its name. Each test drives the tool over the port."""

import re
import time

import serial

from .conftest import mpremote, read_for, read_prompt, wait_for

DAY_MS = 86_400_000


def at_the_repl(line):
    """The toy application returns to the REPL on 'q'."""
    line.write(b"q")
    out = read_prompt(line)
    assert out.endswith(b">>> "), out
    return out


def repl(line, code, timeout_s=10.0):
    line.write(code + b"\r")
    return read_prompt(line, timeout_s)


def test_repl_lines_end_in_crlf_and_the_applications_frames_do_not(toy_board, line):
    info, rig = toy_board
    line.write(b"x")
    frame = read_for(line, 0.3)
    assert re.fullmatch(rb"got 120 at \d+\n", frame), frame  # the application's own bytes
    at_the_repl(line)
    out = repl(line, b"print('a\\nb'); print('c\\r\\nd')")
    assert out.endswith(b"a\r\nb\r\nc\r\nd\r\n>>> "), out
    assert b"\n" not in out.replace(b"\r\n", b"")
    out = repl(line, b"1 // 0")
    assert b"Traceback (most recent call last):\r\n" in out and out.endswith(b"\r\n>>> "), out


def test_one_enter_is_one_prompt_whatever_the_terminal_sends(toy_board, line):
    """miniterm sends \\r\\n for Enter, picocom \\r: either is one Enter, as on a Pico."""
    at_the_repl(line)
    for enter in (b"\r\n", b"\r"):
        line.write(b"6 * 7" + enter)
        out = read_prompt(line)
        assert out == b"6 * 7\r\n42\r\n>>> ", (enter, out)
    line.write(b"\r")
    line.write(b"\n")  # the \n of a \r\n that came in two writes
    assert read_prompt(line) == b"\r\n>>> "


def test_ctrl_c_interrupts_a_loop_at_the_repl(toy_board, line):
    info, rig = toy_board
    at_the_repl(line)
    line.write(b"n = 0\r")
    read_for(line, 0.2)
    line.write(b"while True: n += 1\r\r")
    read_for(line, 0.5)
    line.write(b"\x03")
    out = read_for(line, 0.5)
    assert b"KeyboardInterrupt" in out and out.endswith(b">>> "), out
    assert int(repl(line, b"print(n > 0)").count(b"True")) == 1
    # At the prompt Ctrl-C is a key: it cancels the line and ends nothing.
    line.write(b"print('never')\x03")
    out = read_for(line, 0.4)
    assert b"never\r\n" not in out and out.endswith(b">>> ")
    assert b"\r\n7\r\n" in repl(line, b"7")
    # The same over mpremote: Ctrl-C to a script that never ends, then the board is still there.
    line.close()
    boots = rig.measure()["boots"]
    spin = serial.serial_for_url(info["port"], timeout=0.05)
    spin.write(b"import time\rwhile True: time.sleep_ms(10)\r\r")
    read_for(spin, 0.5)
    spin.write(b"\x03")
    assert b"KeyboardInterrupt" in read_for(spin, 0.5)
    spin.close()
    assert mpremote(info["port"], "eval", "1 + 1").stdout.strip() == "2"
    assert rig.measure()["boots"] == boots + 1  # mpremote's own soft reset, nothing else


def test_ctrl_d_after_raw_repl_tools_runs_main_py(toy_board, line):
    """A tool that enters the raw REPL and leaves it (even before the board has said so) leaves
    the friendly REPL behind: Ctrl-D there runs main.py."""
    info, rig = toy_board
    at_the_repl(line)
    line.write(b"\x01\x02")  # into the raw REPL and out, before the board answers either
    out = read_for(line, 0.5)
    assert b"raw REPL; CTRL-B to exit\r\n" in out and out.endswith(b">>> "), out
    line.close()
    assert mpremote(info["port"], "exec", "print(1)").returncode == 0
    before = rig.measure()["pulses"]
    with serial.serial_for_url(info["port"], timeout=0.05) as port:
        port.write(b"\r\x04")
        assert b"MPY: soft reboot\r\n" in read_for(port, 0.5)
    rig.advance(DAY_MS)
    assert rig.measure()["pulses"] == before + 500


def test_sleeps_and_polls_take_real_time_and_pump_time_stays_put(toy_board, line):
    info, rig = toy_board
    rig.advance(DAY_MS)
    at_the_repl(line)
    started = time.monotonic()
    out = repl(line, b"import time, select, sys; t = time.ticks_ms(); time.sleep(1.5); "
                     b"print('slept', time.ticks_diff(time.ticks_ms(), t))")
    assert time.monotonic() - started >= 1.5
    slept_ms = int(re.search(rb"slept (\d+)", out).group(1))
    assert 1500 <= slept_ms < 2400, out
    out = repl(line, b"p = select.poll(); p.register(sys.stdin, select.POLLIN); "
                     b"t = time.ticks_ms(); print('poll', p.poll(700), time.ticks_diff(time.ticks_ms(), t))")
    polled_ms = int(re.search(rb"poll \[\] (\d+)", out).group(1))
    assert 700 <= polled_ms < 1400, out
    assert rig.time()["clock_ms"] == DAY_MS  # stepped: nothing but the rig moves pump time
    line.close()
    # mpremote mount: the board's side polls its input with real timeouts.
    mount = mpremote(info["port"], "mount", str(info["dir"]), "exec", "import os; print(sorted(os.listdir()))")
    assert mount.returncode == 0 and "emu.json" in mount.stdout, (mount.stdout, mount.stderr)
    assert rig.time()["clock_ms"] == DAY_MS


def test_rtc_reads_and_sets_as_on_a_pico(toy_board, line):
    info, rig = toy_board
    at_the_repl(line)
    line.close()
    # The rig's clock reads from 2021-01-01 00:00 (a Friday: weekday 4, Monday being 0).
    assert mpremote(info["port"], "rtc").stdout.strip() == "(2021, 1, 1, 4, 0, 0, 0, 0)"
    rig.advance(DAY_MS + 3_723_000)
    assert mpremote(info["port"], "rtc").stdout.strip() == "(2021, 1, 2, 5, 1, 2, 3, 0)"
    assert mpremote(info["port"], "rtc", "--set").returncode == 0
    year, month, day, weekday, hours, minutes, seconds, _ = eval(mpremote(info["port"], "rtc").stdout)
    now = time.localtime()  # mpremote sets the board's RTC to the host's local time
    assert (year, month, day) == now[:3] and weekday == now.tm_wday
    assert abs((hours * 3600 + minutes * 60 + seconds) - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)) < 30
    # Setting the RTC moved what the board reads, not pump time; and a kept RTC keeps it.
    assert rig.time()["clock_ms"] == DAY_MS + 3_723_000
    rig.power_cycle()
    with serial.serial_for_url(info["port"], timeout=0.05) as port:
        at_the_repl(port)
    assert eval(mpremote(info["port"], "rtc").stdout)[:3] == now[:3]


def test_the_board_names_itself_and_its_micropython(toy_board, line):
    banner = at_the_repl(line)
    assert b"; pumpsim virtual board (emu) with the MicroPython unix port\r\n" in banner, banner
    assert b"linux" not in banner
    line.close()
    uname = mpremote(toy_board[0]["port"], "exec", "import os; u = os.uname(); print(u.sysname, u.release, u.machine)")
    sysname, release, machine = uname.stdout.strip().split(" ", 2)
    assert sysname == "emu" and machine == "pumpsim virtual board (emu) with the MicroPython unix port"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", release)
