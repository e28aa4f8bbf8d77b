"""docs/testing.md is code: its example test runs here as written, and its table of needs is the
plugin's and the virtual board's rig's."""

import re
from pathlib import Path

import pytest

from pumpsim.hil import plugin
from pumpsim.targets.emu import rigserver

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def example():
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def needs_table():
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+?) \|$", DOC.read_text(), re.M)
    return dict(rows)


def test_the_needs_table_is_the_plugins():
    assert needs_table() == plugin.NEEDS


def test_the_virtual_rig_can_do_every_need():
    assert set(rigserver.CAN) == set(plugin.NEEDS)


def _example_test():
    namespace = {}
    exec(compile(example(), str(DOC), "exec"), namespace)
    (name,) = [n for n in namespace if n.startswith("test_")]
    return namespace[name]


@pytest.mark.pumpsim_needs("stepped-clock")
def test_the_example_test_passes_as_written(bench):
    _example_test()(bench)
