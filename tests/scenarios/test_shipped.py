"""Every scenario of scenarios/ runs on a board of its own and passes: a file added there is run
here, and so by `make test`."""

from pathlib import Path

import pytest

from pumpsim.hil import scenario, scenario_runner

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))


def param(path):
    """The file, marked with what it needs of its rig and the pump days it moves (a file that
    does not load gets no marks, and its test fails with the file's error)."""
    try:
        found = scenario.load(path)
    except scenario.ScenarioError:
        return pytest.param(path, id=path.stem)
    return pytest.param(path, id=path.stem, marks=[pytest.mark.pumpsim_needs(*found.needs),
                                                   pytest.mark.pumpsim_days(found.days)])


def test_scenarios_are_shipped():
    assert len(SHIPPED) >= 6, [p.name for p in SHIPPED]


@pytest.mark.parametrize("path", [param(p) for p in SHIPPED])
def test_the_shipped_scenario_passes(path, bench):
    played = scenario.load(path)
    runner = scenario_runner.Runner(played, bench.client(), bench.rig)
    rows = runner.run()
    assert rows, "%s checks nothing" % path.name
    assert runner.passed, "%s:\n%s" % (path.name, scenario_runner.table(rows))
