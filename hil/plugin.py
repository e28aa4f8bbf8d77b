"""pytest plugin of pumpsim (the `pumpsim` pytest11 entry point).

The `bench` fixture is a pump with its rig: by default a virtual board freshly booted in a temporary
folder with the firmware deployed by mpremote; with --pumpsim-port, --pumpsim-key and --pumpsim-rig,
a physical board on its bench. Tests are written in pump time (`bench.advance_days(10)`), so the
same test runs against either.
"""

import shutil
from pathlib import Path

import pytest

from pumpsim.hil.rig import DAY_MS, Rig


def pytest_addoption(parser):
    group = parser.getgroup("pumpsim", "pumpsim hardware-in-the-loop")
    group.addoption("--pumpsim-port", help="serial port of a physical board (default: a virtual board)")
    group.addoption("--pumpsim-key", help="file holding that board's key, in hex")
    group.addoption("--pumpsim-rig", help="URL of the physical rig beside that board")
    group.addoption("--pumpsim-micropython", help="micropython binary for virtual boards")


def pytest_configure(config):
    config.addinivalue_line("markers", "stepped: needs a rig whose clock is stepped (emulation)")


class Bench:
    """A pump and the rig that measures it."""

    def __init__(self, port, rig_url, key, directory=None):
        self.port = port
        self.rig_url = rig_url
        self.key = key
        self.dir = directory
        self.rig = Rig.open(rig_url)
        self._clients = []

    def client(self, key=True, timeout=5.0):
        """A new client on the pump's serial line; key=False opens one without the key."""
        from pumpsim.client import PumpClient

        client = PumpClient.open(self.port, key=self.key if key else None, timeout=timeout)
        self._clients.append(client)
        return client

    def advance_ms(self, duration_ms):
        return self.rig.advance(int(duration_ms))

    def advance_days(self, days):
        """Move pump time forward by `days` (may be fractional: 71.9)."""
        from fractions import Fraction

        return self.advance_ms(int(Fraction(str(days)) * DAY_MS))

    def close(self):
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a port that may already be gone
                pass
        self.rig.close()


@pytest.fixture(scope="session")
def pumpsim_image(tmp_path_factory, request):
    """The virtual board's flash after one real deploy with mpremote, reused by every board."""
    from pumpsim.hil.drive import make_image

    return make_image(tmp_path_factory.mktemp("image"), request.config.getoption("pumpsim_micropython"))


@pytest.fixture
def bench(request, tmp_path):
    config = request.config
    port = config.getoption("pumpsim_port")
    if port:
        key_file, rig_url = config.getoption("pumpsim_key"), config.getoption("pumpsim_rig")
        if not (key_file and rig_url):
            pytest.skip("a physical bench needs --pumpsim-key and --pumpsim-rig too")
        bench = Bench(port, rig_url, bytes.fromhex(Path(key_file).read_text().strip()))
        if request.node.get_closest_marker("stepped") and bench.rig.time()["clock"] != "stepped":
            bench.close()
            pytest.skip("this test needs a stepped rig clock; the bench runs in real time")
        yield bench
        bench.close()
        return

    from pumpsim.targets.emu import supervisor

    flash, key = request.getfixturevalue("pumpsim_image")
    directory = tmp_path / "board"
    shutil.copytree(flash, directory / "flash")
    (directory / "host.key").write_text(key.hex() + "\n")
    info = supervisor.start(directory, micropython=config.getoption("pumpsim_micropython"))
    bench = Bench(info["port"], info["rig"], key, directory)
    try:
        yield bench
    finally:
        bench.close()
        supervisor.stop(directory)
