"""Maintenance hands the line to mpremote while the watchdog, which nothing stops, goes on being
fed, across mpremote's soft resets too; `mpremote reset` or the time limit brings the therapy back."""

import os
import subprocess
import sys
import time

import pytest

from .helpers import mpremote, mpremote_reset

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

BIN = os.path.dirname(sys.executable)
DAY_MS = 86_400_000
MINUTE_MS = 60_000


def infusing_then_maintenance(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 500
    reply = client.maintenance()
    client.close()
    assert reply["repl"] is True and reply["minutes"] == 30
    return reply


def last_boot(bench):
    return [e for e in bench.client().log() if e["event"] == "boot"][-1]


def test_maintenance_then_mpremote_then_reset_resumes_therapy(bench):
    infusing_then_maintenance(bench)
    listing = mpremote(bench.port, "fs", "ls")
    assert listing.returncode == 0, listing.stderr
    for name in ("main.py", "boot.py", "boardcfg.mpy", "pump/"):
        assert name in listing.stdout
    listing = mpremote(bench.port, "fs", "ls", "pump")
    assert "app.mpy" in listing.stdout

    bench.advance_ms(10 * MINUTE_MS)
    assert bench.rig.measure()["pulses"] == 500  # stopped while in maintenance

    mpremote_reset(bench)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 1000  # the programmed therapy runs again
    status = bench.client().status()
    assert status["state"] == "infusing"
    assert status["daily_dose_ug"] == 500
    assert last_boot(bench)["cause"] == "maintenance_end"


def tool(name, port, *args):
    """One of the well-known REPL and file tools, as a user runs it (their own timeouts apply)."""
    commands = {
        "mpremote": [sys.executable, "-m", "mpremote", "connect", port],
        "ampy": [os.path.join(BIN, "ampy"), "--port", port],
        "rshell": [os.path.join(BIN, "rshell"), "--port", port, "--quiet"],
        "pyboard": [os.path.join(BIN, "pyboard"), "--device", port],
    }
    return subprocess.run(commands[name] + list(args), capture_output=True, text=True, timeout=90)


# Each tool's listing of the board, what it says when it cannot reach the REPL, and how long it
# tries: mpremote and pyboard.py wait 10 s for the raw REPL, ampy 5 times 10 s, rshell 2 times 10 s.
LISTINGS = [
    ("mpremote", ("fs", "ls"), "could not enter raw repl", 10),
    ("ampy", ("ls",), "could not enter raw repl", 50),
    ("rshell", ("ls", "/pyboard"), "Unable to connect to REPL", 20),
    ("pyboard", ("-c", "import os; print(os.listdir())"), "could not enter raw repl", 10),
]


@pytest.mark.parametrize("name, args, refusal, tries_s", LISTINGS, ids=[t[0] for t in LISTINGS])
def test_repl_tools_at_a_running_pump_fail_within_their_timeout_and_therapy_goes_on(bench, name, args, refusal,
                                                                                     tries_s):
    """As at a Pico whose application holds the line: no tool can enter the raw REPL, each says
    so within its own timeout (the pump answers what they send, \r-ended, with an error frame,
    so none waits for ever), and the pump keeps the line and its therapy. A /dev/pts/* port would
    make mpremote wait for ever (it takes such a port for an emulator's): the port is a link.
    The board sat asleep for that wall time: it was not hung, and is not reset."""
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    client.close()
    assert not bench.port.startswith("/dev/pts/")
    started = time.monotonic()
    attempt = tool(name, bench.port, *args)
    assert attempt.returncode != 0 and refusal in attempt.stdout + attempt.stderr, (attempt.stdout, attempt.stderr)
    assert time.monotonic() - started < tries_s + 15
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 500
    assert bench.rig.measure()["boots"] == 1
    assert bench.client().status()["state"] == "infusing"


def test_soft_resets_in_maintenance_keep_the_watchdog_fed(bench):
    """`mpremote fs ls` and `soft-reset` soft-reset the board; boot.py feeds the watchdog again,
    or it would reset the board 8 s later and the pump would leave maintenance under mpremote."""
    infusing_then_maintenance(bench)
    for args in (("fs", "ls"), ("soft-reset",), ("exec", "print(1)")):
        done = mpremote(bench.port, *args)
        assert done.returncode == 0, done.stderr
        bench.advance_ms(5 * MINUTE_MS)
    assert bench.rig.measure()["pulses"] == 500
    assert "main.py" in mpremote(bench.port, "fs", "ls").stdout  # still the REPL's


def test_maintenance_ends_by_itself_at_its_time_limit(bench):
    infusing_then_maintenance(bench)
    assert mpremote(bench.port, "fs", "ls").returncode == 0
    bench.advance_ms(29 * MINUTE_MS)
    assert bench.rig.measure()["pulses"] == 500
    bench.advance_ms(2 * MINUTE_MS)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] >= 990  # the whole day's therapy but for the 30 minutes
    assert bench.client().status()["state"] == "infusing"
    assert last_boot(bench)["cause"] == "maintenance_timeout"


def test_maintenance_needs_the_key(bench):
    from pumpsim import frames
    from pumpsim.errors import PumpsimError, Refused

    with pytest.raises(PumpsimError, match="key"):
        bench.client(key=False).maintenance()  # the client will not even ask without the key
    # Asked anyway, without a MAC, the firmware refuses and keeps running.
    client = bench.client(key=False)
    client._port.write(frames.request(7, "maintenance", {}))
    with pytest.raises(Refused) as refused:
        client._await(7, "maintenance")
    assert refused.value.code == "E_AUTH"
    status = bench.client().status()
    assert status["auth_failures"] == 1
