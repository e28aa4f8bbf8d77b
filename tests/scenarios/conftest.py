"""What the scenario tests share: a board started by `pumpsim scenario run` boots from the run's
image (docs/testing.md) rather than deploying the firmware again."""

import shutil

import pytest

from pumpsim import targets
from pumpsim.targets.emu.flashfs import IMAGE as FLASH_IMAGE


@pytest.fixture
def from_image(monkeypatch, pumpsim_image):
    """targets.start, given the run's deployed flash first: what `scenario run` starts is then a
    new pump with the firmware on it, as it would be after its own deploy. The folders it was
    asked for are listed."""
    flash, key = pumpsim_image
    real_start = targets.start
    started = []

    def start(directory, target="emu", **kwargs):
        started.append(directory)
        shutil.copy(flash, directory / FLASH_IMAGE)
        (directory / "host.key").write_text(key.hex() + "\n")
        return real_start(directory, target, **kwargs)

    monkeypatch.setattr(targets, "start", start)
    return started


@pytest.fixture
def no_board(monkeypatch):
    """targets.start that fails the test: nothing may start a board."""

    def start(directory, *args, **kwargs):
        pytest.fail("a board was started in %s" % directory)

    monkeypatch.setattr(targets, "start", start)
