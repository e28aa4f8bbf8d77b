"""The loopback farm of lab.py, once per test process; `lab` is it with nothing held."""

import os
import shutil
import subprocess
import sys

import pytest

from pumpsim import farm as farm_mod
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE

from .lab import ASK_COORDINATOR_S, PLACES, TAGS, Farm, answers, exporter_config, missing_programs, wait_for


@pytest.fixture(scope="session")
def farm(tmp_path_factory, request):
    bindir, missing = missing_programs()
    if missing:
        if os.environ.get("PUMPSIM_FARM_REQUIRED") == "1":
            pytest.fail("PUMPSIM_FARM_REQUIRED=1 but %s" % missing, pytrace=False)
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("farm")
    farm = Farm(bindir, root)
    try:
        # Each bench's board starts from the run's deployed image (so `emu start` deploys nothing).
        flash, key = request.getfixturevalue("pumpsim_image")
        for place in PLACES:
            (root / place).mkdir()
            shutil.copy(flash, root / place / FLASH_IMAGE)
            (root / place / "host.key").write_text(key.hex() + "\n")
        starting = {place: _pumpsim("emu", "start", "--dir", str(root / place)) for place in PLACES}
        for place, proc in starting.items():
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            farm.boards[place] = root / place
        (root / "exporter.yaml").write_text(exporter_config(farm))
        farm.spawn("labgrid-coordinator", "-l", farm.coordinator, log="coordinator.log")
        wait_for(lambda: answers(farm), 20, "the coordinator", ASK_COORDINATOR_S)
        farm.spawn("labgrid-exporter", "-c", farm.coordinator, "--hostname", "127.0.0.1", "-n", "lab1",
                   "exporter.yaml", log="exporter.log")
        wait_for(lambda: all("lab1/%s/PumpsimKey" % p in farm.lg("resources") for p in PLACES), 20,
                 "the exporter's resources", ASK_COORDINATOR_S)
        # As docs/farm.md sets up a place; both places side by side.
        for step in (("create",), ("add-match", "lab1/%s/*"), ("set-tags", TAGS)):
            calls = [farm_mod.Call(farm.client, ("-p", place, step[0], *(a.replace("%s", place) for a in step[1:])))
                     for place in PLACES]
            for call in calls:
                call.wait()
                call.result()
        yield farm
    finally:
        stopping = [_pumpsim("emu", "stop", "--dir", str(directory)) for directory in farm.boards.values()]
        for proc in farm.procs:
            proc.terminate()
        for proc in farm.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in stopping:
            proc.communicate(timeout=30)


def _pumpsim(*args):
    return subprocess.Popen([sys.executable, "-m", "pumpsim.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def lab(farm):
    """The farm, with nothing held after the test (nor before it, then)."""
    yield farm
    farm.release_all()
