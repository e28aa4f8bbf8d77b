"""docs/scenarios.md is the parser's own: its tables of actions and keys are hil/scenario.py's
tables, its example file runs as written, and it names every scenario of scenarios/."""

import re
from pathlib import Path

import pytest

from pumpsim.hil import scenario, scenario_runner

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "scenarios.md").read_text()


def table(heading):
    """The rows of the first table under a heading, each a list of its cells (the header's off)."""
    lines = re.split(r"\n#+ %s\n" % re.escape(heading), DOC, maxsplit=1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def plain(cell):
    return cell.replace("`", "")


def test_the_actions_table_is_the_parser_s():
    documented = [(plain(row[0]), plain(row[1]), plain(row[3])) for row in table("Actions")]
    parser = []
    for name, action in scenario.ACTIONS.items():
        for variant, form in action.forms.items():
            first = name if variant is None else '%s %s = "%s"' % (name, action.variant, variant)
            parser.append((first, form.expected(), action.need or ""))
    assert documented == parser


def test_the_keys_table_is_the_parser_s():
    documented = {plain(row[0]): row[1] for row in table("Keys")}
    assert documented == {key: spec.form for key, spec in scenario.KEYS.items()}


def test_the_scenario_table_is_the_parser_s():
    documented = {plain(row[0]): (row[1], row[2]) for row in table("The [scenario] table")}
    assert documented == {key: ("yes" if key in scenario.SCENARIO_REQUIRED else "no", spec.form)
                          for key, spec in scenario.SCENARIO_KEYS.items()}


def test_every_shipped_scenario_has_its_row():
    documented = {plain(row[0]) for row in table("The scenarios of scenarios/")}
    assert documented == {path.name for path in (ROOT / "scenarios").glob("*.toml")}


def test_the_readme_lists_the_doc():
    assert "[docs/scenarios.md](docs/scenarios.md)" in (ROOT / "README.md").read_text()


EXAMPLE = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)


@pytest.mark.pumpsim_needs("stepped-clock")
@pytest.mark.pumpsim_days(7)
def test_the_example_runs_as_written(bench):
    runner = scenario_runner.Runner(scenario.parse(EXAMPLE, "docs/scenarios.md"), bench.client(), bench.rig)
    rows = runner.run()
    assert len(rows) == 1 and runner.passed, scenario_runner.table(rows)


def test_the_alarm_codes_are_safety_md_s_and_the_error_codes_protocol_md_s():
    safety = (ROOT / "docs" / "safety.md").read_text().split("\n## Alarms\n", 1)[1].split("\n## ", 1)[0]
    assert set(scenario.ALARM_CODES) == set(re.findall(r"^\| `([A-Z_]+)` \| (?:high|medium) \|", safety, re.M))
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    assert set(scenario.ERROR_CODES) == set(re.findall(r"^\| `(E_[A-Z]+)` \|", protocol, re.M))
