"""docs/testing.md is code: its example tests run here as written, on whichever target this run
has (make test runs this file on rp2040js too), and its tables are the plugin's."""

import inspect
import re
from pathlib import Path

import pytest

from pumpsim.hil import plugin
from pumpsim.targets.emu import rigserver

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def examples():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def table(heading):
    """The rows of the first table under a heading: {first cell: the rest}."""
    section = DOC.read_text().split("\n## " + heading + "\n", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]
    return {row[0].strip("`"): row[1:] for row in rows}


def test_the_needs_table_is_the_plugins():
    assert {need: cells[0] for need, cells in table("What a test needs of its rig").items()} == plugin.NEEDS


def test_the_virtual_rig_can_do_every_need():
    assert set(rigserver.CAN) == set(plugin.NEEDS)


def test_the_fixtures_table_is_the_plugins():
    fixtures = {name for name, value in vars(plugin).items() if getattr(value, "_fixture_function_marker", None)
                or type(value).__name__ == "FixtureFunctionDefinition"}
    public = {name for name in fixtures if not name.startswith("pumpsim_")}  # the images are the plugin's own
    assert set(table("Fixtures")) == public == {"pump", "rig", "bench"}


def test_the_settings_table_is_the_plugins():
    rows = table("Where the board comes from")
    assert {flag: cells[0].strip("`") for flag, cells in rows.items()} == {
        "--" + name.replace("_", "-"): name for name in plugin.SETTINGS}


def _example(source):
    namespace = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    (name,) = [n for n in namespace if n.startswith("test_")]
    return namespace[name]


@pytest.mark.parametrize("n", range(len(examples())), ids=lambda n: "example-%d" % (n + 1))
def test_the_example_tests_pass_as_written(request, n):
    """Each example with its own marks and fixtures, as pytest would run it from a file."""
    function = _example(examples()[n])
    for mark in getattr(function, "pytestmark", []):
        request.node.add_marker(getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs))
    function(**{name: request.getfixturevalue(name) for name in inspect.signature(function).parameters})
