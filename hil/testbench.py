"""A pump and the rig that measures it, as a test of the pytest plugin (hil/plugin.py) has them.

A test declares what it asks of the rig (`pumpsim_needs`) and how much pump time it moves
(`pumpsim_days`); the rig it gets refuses what was not declared, so that the declarations stay
true and a target that cannot do them skips the test before it starts.
"""

import time
from fractions import Fraction

import pytest

from pumpsim.hil.needs import NEED_FEATURES, NEEDS, unable  # noqa: F401 - the plugin's API
from pumpsim.hil.rig import DAY_MS, Rig

# The rig requests that need one of NEEDS.
_NEED_OF = {"advance": "stepped-clock", "clock": "stepped-clock", "reset": "reset", "stall": "motor-stall",
            "battery": "battery", "tones": "tones", "hang": "hang", "corrupt_flash": "corrupt-flash",
            "rtc": "volatile-rtc"}


class DeclaredRig:
    """The rig as a test sees it: each request that changes the board must have been declared,
    and pump time moves no further than the test's pumpsim_days (None: no limit)."""

    def __init__(self, rig, declared, nodeid, days=None):
        self._rig, self._declared, self._nodeid = rig, declared, nodeid
        self._limit_ms = None if days is None else int(Fraction(str(days)) * DAY_MS)
        self.moved_ms = 0

    def _need(self, name):
        if name not in self._declared:
            pytest.fail("%s asks the rig for %r without declaring it: add "
                        "@pytest.mark.pumpsim_needs(%r)" % (self._nodeid, name, name), pytrace=False)

    def moving(self, duration_ms):
        """Count duration_ms of pump time against the test's pumpsim_days, before it moves."""
        if self._limit_ms is not None and self.moved_ms + duration_ms > self._limit_ms:
            pytest.fail("%s moves pump time by %s days (%d ms), beyond its pumpsim_days(%s): declare what "
                        "it needs" % (self._nodeid, _days(self.moved_ms + duration_ms), self.moved_ms + duration_ms,
                                      _days(self._limit_ms)), pytrace=False)
        self.moved_ms += duration_ms

    def advance(self, duration_ms, timeout_s=None):
        self._need("stepped-clock")
        self.moving(duration_ms)
        return self._rig.advance(duration_ms, timeout_s)

    def power_cycle(self, at_write=None):
        self._need("power-cut" if at_write is None else "power-cut-mid-write")
        return self._rig.power_cycle(at_write)

    def __getattr__(self, name):
        if name in _NEED_OF:
            self._need(_NEED_OF[name])
        return getattr(self._rig, name)


def _days(duration_ms):
    return ("%.9f" % (duration_ms / DAY_MS)).rstrip("0").rstrip(".")


class Bench:
    """A pump and the rig that measures it."""

    def __init__(self, port, rig_url, key, directory=None, declared=None, nodeid="a test", days=None):
        self.port = port
        self.rig_url = rig_url
        self.key = key
        self.dir = directory
        self.place = None  # the labgrid place it came from, if any
        self.raw_rig = Rig.open(rig_url)
        self.rig = self.raw_rig if declared is None else DeclaredRig(self.raw_rig, declared, nodeid, days)
        self._clients = []
        self.reports = []  # the reports bench.report wrote, which the plugin names in JUnit
        self.evidence_dir = None  # where a failed test's evidence goes (hil/evidence.py)

    def skip_unless_able(self, needs):
        """Skip the test when this rig cannot do what it needs."""
        can = set(self.raw_rig.hello().get("can", ()))
        missing = sorted(needs - can)
        if missing:
            pytest.skip("this rig cannot do what the test needs: %s (it can: %s)"
                        % (", ".join(missing), ", ".join(sorted(can)) or "nothing declared"))

    client_timeout_s = 5.0

    def client(self, key=True, timeout=None):
        """A new client on the pump's serial line; key=False opens one without the key."""
        from pumpsim.client import PumpClient

        timeout = self.client_timeout_s if timeout is None else timeout
        client = PumpClient.open(self.port, key=self.key if key else None, timeout=timeout)
        self._clients.append(client)
        return client

    def advance_ms(self, duration_ms):
        return self.rig.advance(int(duration_ms))

    def wait_ms(self, duration_ms, poll_s=1.0):
        """Let pump time run on by duration_ms, whatever the rig's clock: a stepped rig moves it,
        on a real-time rig the test waits for it. Needs nothing of the rig but pumpsim_days."""
        if isinstance(self.rig, DeclaredRig):
            self.rig.moving(int(duration_ms))
        if self.raw_rig.time()["clock"] == "stepped":
            return self.raw_rig.advance(int(duration_ms))
        target_ms = self.raw_rig.time()["clock_ms"] + duration_ms
        while True:
            now = self.raw_rig.time()
            if now["clock_ms"] >= target_ms:
                return now
            time.sleep(min(poll_s, max(0.05, (target_ms - now["clock_ms"]) / 1000)))

    def wait_until(self, predicate, timeout_ms, what, step_ms=1000):
        """Wait in pump time (as wait_ms) until predicate() gives something true; AssertionError
        naming `what` when it has not within timeout_ms of pump time."""
        waited_ms = 0
        while True:
            value = predicate()
            if value:
                return value
            if waited_ms >= timeout_ms:
                raise AssertionError("%s: not within %d ms of pump time" % (what, timeout_ms))
            self.wait_ms(step_ms)
            waited_ms += step_ms

    def advance_days(self, days):
        """Move pump time forward by `days` (may be fractional: 71.9)."""
        return self.advance_ms(int(Fraction(str(days)) * DAY_MS))

    def wait_for_pump(self, timeout_s=300.0):
        """Until the pump answers status (a board that just booted may be busy a while)."""
        from pumpsim.errors import PumpsimError

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with self.client() as client:
                    return client.status()
            except PumpsimError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def report(self, directory, programme=None, start_ms=None):
        """Write the accuracy report of this board's run so far into directory (docs/report.md):
        its report.html, PNGs, report.csv and summary.json; the page's path, which the plugin
        names in the test's JUnit record with its worst hourly error."""
        from pathlib import Path

        from pumpsim.hil import report

        with self.client(key=False) as client:
            page = report.report_for(client, self.raw_rig, Path(directory), programme, start_ms)
        self.reports.append(page)
        return page

    def close(self):
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a port that may already be gone
                pass
        self.raw_rig.close()
