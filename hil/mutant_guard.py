"""pytest plugin that the mutation gate loads into every run it starts (`-p pumpsim.hil.mutant_guard`).

A run of the gate is worth something only if the code under test is the mutated copy. The package
is also installed editable from the real tree, so a mistake in the import path would test the
unmutated code and every mutant would look like a survivor, or the baseline like a pass. This
plugin stops the run with EXIT_NOT_THE_COPY when `pumpsim` (the deployed firmware, the board, the
harness) or `pump` (the firmware the unit tests import) comes from anywhere else.
"""

import os
import sys
from pathlib import Path

import pytest

EXIT_NOT_THE_COPY = 86
ROOT_VARIABLE = "PUMPSIM_MUTANT_ROOT"


def _outside(root, modules):
    return ["%s from %s" % (module.__name__, module.__file__) for module in modules
            if not Path(module.__file__).resolve().is_relative_to(root)]


def _check(modules):
    root = os.environ.get(ROOT_VARIABLE)
    if not root:
        return
    wrong = _outside(Path(root).resolve(), modules)
    if wrong:
        pytest.exit("not the mutated copy (%s): %s" % (root, "; ".join(wrong)), returncode=EXIT_NOT_THE_COPY)


def pytest_configure(config):
    import pumpsim
    import pumpsim.boards
    import pumpsim.firmware
    import pumpsim.hil.plugin

    _check([pumpsim, pumpsim.boards, pumpsim.firmware, pumpsim.hil.plugin])


def pytest_collection_finish(session):
    # The unit tests put firmware/ on sys.path from their conftest, during collection.
    _check([m for m in (sys.modules.get("pump"),) if m is not None and getattr(m, "__file__", None)])
