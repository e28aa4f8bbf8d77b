"""pytest plugin of pumpsim (the `pumpsim` pytest11 entry point).

The `bench` fixture is a pump with its rig: by default a virtual board freshly booted in a temporary
folder with the firmware deployed by mpremote; with --pumpsim-port, --pumpsim-key and --pumpsim-rig,
a physical board on its bench; with --pumpsim-place (or --lg-env), the bench of a labgrid place
(hil/farmplugin.py, docs/farm.md). Tests are written in pump time (`bench.advance_days(10)`), so the
same test runs against either.

A test declares what it needs of the rig with `@pytest.mark.pumpsim_needs("stepped-clock",
"power-cut", ...)` (the names in NEEDS; docs/testing.md). On a rig that cannot do one of them
the test is skipped with the reason; a test that asks the rig for something it did not declare
fails, so that the declarations stay true.
"""

import shutil
from pathlib import Path

import pytest

from pumpsim.hil.rig import DAY_MS, Rig
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE

pytest_plugins = ("pumpsim.hil.farmplugin",)


def pytest_addoption(parser):
    group = parser.getgroup("pumpsim", "pumpsim hardware-in-the-loop")
    group.addoption("--pumpsim-port", help="serial port of a physical board (default: a virtual board)")
    group.addoption("--pumpsim-key", help="file holding that board's key, in hex")
    group.addoption("--pumpsim-rig", help="URL of the physical rig beside that board")
    group.addoption("--pumpsim-micropython", help="micropython binary for virtual boards")
    group.addoption("--pumpsim-target", choices=TARGETS, default=None,
                    help="what starts each test's board: emu (the unix port, stepped time; the default), "
                         "rp2040js (official MicroPython on an emulated RP2040, real time) or bench (two "
                         "emulated Picos, the DUT and the rig Pico running boards/rig_pico, wired as on a desk)")
    parser.addini("pumpsim_target", "the default of --pumpsim-target", default="emu")


TARGETS = ("emu", "rp2040js", "bench")
# A Pico in the emulator runs Python at a fraction of silicon's speed on a busy machine.
RP2040JS_TIMEOUT_S = 60.0


def target_of(config):
    target = config.getoption("pumpsim_target") or config.getini("pumpsim_target")
    if target not in TARGETS:
        raise pytest.UsageError("pumpsim_target %r: one of %s" % (target, ", ".join(TARGETS)))
    return target


# What a test may need of its rig, and the rig requests that need it.
NEEDS = {
    "stepped-clock": "pump time moves only when the test moves it (`advance`, `clock`)",
    "reset": "a hard reset of the board, power kept",
    "power-cut": "the board's power cut and restored",
    "power-cut-mid-write": "the power cut in the middle of a given write to the records (FRAM, or flash)",
    "motor-stall": "the motor's feedback driven: stalled, intermittent, the next N attempts failing",
    "battery": "the battery voltage the board's ADC reads",
    "tones": "the buzzer's tones recorded",
    "hang": "the firmware made to hang, so that its watchdog must act",
    "corrupt-flash": "the board's saved records or event log corrupted",
    "volatile-rtc": "the board's RTC made to restart at every power-up, as a Pico's does",
    "boot-count": "the board's boots counted by the rig (a rig Pico sees only the DUT's pins, not its boots)",
}
_NEED_OF = {"advance": "stepped-clock", "clock": "stepped-clock", "reset": "reset", "stall": "motor-stall",
            "battery": "battery", "tones": "tones", "hang": "hang", "corrupt_flash": "corrupt-flash",
            "rtc": "volatile-rtc"}


def pytest_configure(config):
    config.addinivalue_line("markers", "pumpsim_needs(*names): what the test needs of its rig (%s)"
                            % ", ".join(NEEDS))


def declared_needs(node):
    names = set()
    for mark in node.iter_markers("pumpsim_needs"):
        unknown = set(mark.args) - set(NEEDS)
        if unknown:
            raise pytest.UsageError("%s: unknown pumpsim_needs %s (known: %s)"
                                    % (node.nodeid, ", ".join(sorted(unknown)), ", ".join(NEEDS)))
        names.update(mark.args)
    return names


class DeclaredRig:
    """The rig as a test sees it: each request that changes the board must have been declared."""

    def __init__(self, rig, declared, nodeid):
        self._rig, self._declared, self._nodeid = rig, declared, nodeid

    def _need(self, name):
        if name not in self._declared:
            pytest.fail("%s asks the rig for %r without declaring it: add "
                        "@pytest.mark.pumpsim_needs(%r)" % (self._nodeid, name, name), pytrace=False)

    def power_cycle(self, at_write=None):
        self._need("power-cut" if at_write is None else "power-cut-mid-write")
        return self._rig.power_cycle(at_write)

    def __getattr__(self, name):
        if name in _NEED_OF:
            self._need(_NEED_OF[name])
        return getattr(self._rig, name)


class Bench:
    """A pump and the rig that measures it."""

    def __init__(self, port, rig_url, key, directory=None, declared=None, nodeid="a test"):
        self.port = port
        self.rig_url = rig_url
        self.key = key
        self.dir = directory
        self.place = None  # the labgrid place it came from, if any
        self.raw_rig = Rig.open(rig_url)
        self.rig = self.raw_rig if declared is None else DeclaredRig(self.raw_rig, declared, nodeid)
        self._clients = []

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
        on a real-time rig the test waits for it. Needs nothing of the rig."""
        import time

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
        from fractions import Fraction

        return self.advance_ms(int(Fraction(str(days)) * DAY_MS))

    def wait_for_pump(self, timeout_s=300.0):
        """Until the pump answers status (a board that just booted may be busy a while)."""
        import time

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

    def close(self):
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a port that may already be gone
                pass
        self.raw_rig.close()


@pytest.fixture(scope="session")
def pumpsim_image(tmp_path_factory, request):
    """The board's flash after one real deploy with mpremote, reused by every board of the run."""
    target = target_of(request.config)
    if target in ("rp2040js", "bench"):
        from pumpsim.errors import PumpsimError
        from pumpsim.targets.rp2040js import supervisor as rp2040js

        try:
            rp2040js.find_firmware(), rp2040js.find_bootrom()
        except PumpsimError as exc:
            pytest.skip("--pumpsim-target %s: %s" % (target, exc))
        directory = _once_per_run(tmp_path_factory, "pumpsim-rp2040js-image", rp2040js.make_image)
        return directory / "flash.bin", bytes.fromhex((directory / "host.key").read_text().strip())
    from pumpsim.hil.drive import make_image

    return make_image(tmp_path_factory.mktemp("image"), request.config.getoption("pumpsim_micropython"))


@pytest.fixture(scope="session")
def pumpsim_rig_image(tmp_path_factory):
    """The rig Pico's flash: a blank emulated Pico given boards/rig_pico by mpremote, once per run."""
    from pumpsim.targets.rp2040js import bench

    return _once_per_run(tmp_path_factory, "pumpsim-rig-pico-image", bench.make_rig_image) / "flash.bin"


def _once_per_run(tmp_path_factory, name, build):
    """A folder build(folder) fills once per test run: xdist workers share it through a lock."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base
    directory = shared / name
    with open(shared / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "ready").exists():
            shutil.rmtree(directory, ignore_errors=True)
            build(directory)
            (directory / "ready").write_text("")
    return directory


def _farm_bench(request, farm_bench, needs):
    import fcntl

    from pumpsim.hil import farmplugin

    # One bench per run: xdist's workers take turns on it.
    with open(farmplugin.turn_file(request.getfixturevalue("tmp_path_factory")), "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        bench = Bench(farm_bench["port"], farm_bench["rig"], farm_bench["key"], declared=needs,
                      nodeid=request.node.nodeid)
        bench.place = farm_bench["place"]
        try:
            bench.skip_unless_able(needs)
            yield bench
        finally:
            bench.close()


@pytest.fixture
def bench(request, tmp_path):
    config = request.config
    needs = declared_needs(request.node)
    from pumpsim.hil import farmplugin  # registered by pytest_plugins above, so imported here

    farm_bench = farmplugin.bench_of(config)
    if farm_bench:
        yield from _farm_bench(request, farm_bench, needs)
        return
    port = config.getoption("pumpsim_port")
    if port:
        key_file, rig_url = config.getoption("pumpsim_key"), config.getoption("pumpsim_rig")
        if not (key_file and rig_url):
            pytest.skip("a physical bench needs --pumpsim-key and --pumpsim-rig too")
        bench = Bench(port, rig_url, bytes.fromhex(Path(key_file).read_text().strip()), declared=needs,
                      nodeid=request.node.nodeid)
        try:
            bench.skip_unless_able(needs)
            yield bench
        finally:
            bench.close()
        return

    from pumpsim.targets.emu import supervisor

    target = target_of(config)
    flash, key = request.getfixturevalue("pumpsim_image")
    directory = tmp_path / "board"
    if target == "rp2040js":
        from pumpsim.targets.rp2040js import supervisor as rp2040js

        directory.mkdir()
        shutil.copy(flash, directory / "flash.bin")
        (directory / "host.key").write_text(key.hex() + "\n")
        info = rp2040js.start(directory)
    elif target == "bench":
        from pumpsim.targets.rp2040js import bench as emulated_bench

        rig_flash = request.getfixturevalue("pumpsim_rig_image")
        (directory / emulated_bench.RIG_DIR).mkdir(parents=True)
        shutil.copy(flash, directory / "flash.bin")
        shutil.copy(rig_flash, directory / emulated_bench.RIG_DIR / "flash.bin")
        (directory / "host.key").write_text(key.hex() + "\n")
        info = emulated_bench.start(directory)
    else:
        directory.mkdir()
        shutil.copy(flash, directory / FLASH_IMAGE)
        (directory / "host.key").write_text(key.hex() + "\n")
        info = supervisor.start(directory, micropython=config.getoption("pumpsim_micropython"))
    bench = Bench(info["port"], info["rig"], key, directory, declared=needs, nodeid=request.node.nodeid)
    if target != "emu":
        bench.client_timeout_s = bench.raw_rig.timeout_s = RP2040JS_TIMEOUT_S
    try:
        bench.skip_unless_able(needs)
        if target != "emu":
            bench.wait_for_pump()
        yield bench
    finally:
        bench.close()
        supervisor.stop(directory)
