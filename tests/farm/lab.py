"""A labgrid farm on loopback: a coordinator, and an exporter exporting two virtual boards
(`pumpsim emu start`) as the benches of places bench-a and bench-b, tagged pumpsim=bench.

Without labgrid (.venv-labgrid: `make .venv-labgrid/bin/.installed`) or ser2net the farm's tests
are skipped, saying so; with PUMPSIM_FARM_REQUIRED=1 (CI) they fail instead."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pumpsim import farm as farm_mod
from pumpsim.hil.rig import Rig

PLACES = ("bench-a", "bench-b")
TAGS = "pumpsim=bench"


def missing_programs():
    try:
        client = farm_mod.find_client()
    except farm_mod.FarmError as exc:
        return None, str(exc)
    bindir = Path(client).parent
    for program in ("labgrid-coordinator", "labgrid-exporter"):
        if not (bindir / program).exists():
            return None, "%s not found beside %s" % (program, client)
    if not (shutil.which("ser2net") or Path("/usr/sbin/ser2net").exists()):
        return None, "ser2net not found (the exporter serves each bench's serial port with it: apt install ser2net)"
    return bindir, None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A labgrid-client takes most of a second of CPU to start: the runs under test need it more.
ASK_COORDINATOR_S = 1.0


def wait_for(predicate, timeout_s, what, poll_s=0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %g s" % (what, timeout_s))
        time.sleep(poll_s)


class Farm:
    """The running farm, and the labgrid-client a lab user would type."""

    def __init__(self, bindir, root):
        self.bindir, self.root = bindir, root
        self.coordinator = "127.0.0.1:%d" % free_port()
        self.client = farm_mod.LabgridClient(str(bindir / "labgrid-client"), self.coordinator)
        self.boards = {}  # place → the folder of its virtual board
        self.procs = []

    def lg(self, *args, check=True):
        return self.client.call(*args, check=check)

    def who(self):
        """{place: who holds it (host/user)}, from the coordinator (`labgrid-client who`)."""
        return _parse_who(self.lg("who"))

    def reservations(self):
        """[(token, state)] from the coordinator."""
        return _parse_reservations(self.lg("reservations"))

    def state(self):
        """(who(), reservations()) at once."""
        who, reservations = farm_mod.Call(self.client, ("who",)), farm_mod.Call(self.client, ("reservations",))
        who.wait(), reservations.wait()
        return _parse_who(who.result()), _parse_reservations(reservations.result())

    def clock_ms(self, place):
        """The board's own pump time, read from its rig."""
        rig = Rig.open(json.loads((self.boards[place] / "emu.json").read_text())["rig"])
        try:
            return rig.time()["clock_ms"]
        finally:
            rig.close()

    def spawn(self, program, *args, log):
        proc = subprocess.Popen([str(self.bindir / program), *args], cwd=self.root, stdin=subprocess.DEVNULL,
                                stdout=open(self.root / log, "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def pytest(self, name, *args, env=None, coordinator=True):
        """A pytest run against the farm, as a lab user starts one: in a session of its own, so
        that os.killpg(run.pid, SIGINT) is a Ctrl-C at its terminal."""
        # Without hypothesis's plugin, which takes seconds to load and these runs do not use.
        return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "-p", "no:hypothesispytest",
                                 "--basetemp", str(self.root / ("tmp-" + name)),
                                 *(("--pumpsim-coordinator", self.coordinator) if coordinator else ()), *args],
                                cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
                                start_new_session=True)

    def release_all(self):
        who, reservations = self.state()
        self.client.calls(*[("-p", place, "release") for place in who],
                          *[("cancel-reservation", token) for token, _ in reservations])


def _parse_who(text):
    rows = [line.split() for line in text.splitlines()[1:]]
    return {row[2]: "%s/%s" % (row[1], row[0]) for row in rows if len(row) >= 3}


def _parse_reservations(text):
    out, token = [], None
    for line in text.splitlines():
        if line.startswith("Reservation '"):
            token = line.split("'")[1]
        elif line.strip().startswith("state: "):
            out.append((token, line.split(": ", 1)[1].strip()))
    return out


def exporter_config(farm):
    lines = []
    for place, directory in farm.boards.items():
        info = json.loads((directory / "emu.json").read_text())
        rig_port = int(info["rig"].rsplit(":", 1)[1])
        lines += ["%s:" % place,
                  "  dut:", "    cls: RawSerialPort", "    port: %s" % info["pty"], "    speed: 115200",
                  "  rig:", "    cls: NetworkSerialPort", "    host: 127.0.0.1", "    port: %d" % rig_port,
                  "    protocol: raw",
                  "  key:", "    cls: PumpsimKey", '    hex: "%s"' % (directory / "host.key").read_text().strip()]
    return "\n".join(lines) + "\n"


def answers(farm):
    try:
        farm.lg("places")
        return True
    except farm_mod.CoordinatorUnreachable:
        return False
