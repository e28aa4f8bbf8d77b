"""docs/cli.md is the CLI's contract: every command with its options, and the settings' ranges,
as the code has them."""

import re
import sys
from fractions import Fraction
from pathlib import Path

from pumpsim.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "cli.md").read_text()


def first_cells():
    # A cell may hold escaped pipes ("on\\|off"): only a bare one ends it.
    return [re.split(r"(?<!\\)\|", line)[1].strip().strip("`") for line in DOC.splitlines()
            if line.startswith("| `")]


def words_of(cell):
    words = []
    for token in cell.split():
        if not re.fullmatch(r"[a-z][a-z-]*", token):
            break
        words.append(token)
    return tuple(words)


def test_every_command_is_documented_with_exactly_its_options():
    documented = {}
    for cell in first_cells():  # a command may have a row per way of calling it (bolus)
        documented.setdefault(words_of(cell), set()).update(re.findall(r"--[a-z-]+", cell))
    for words, _, options in COMMANDS:
        assert words in documented, " ".join(words)
        flags = {flag for names, _ in options for flag in names if flag.startswith("--")}
        assert documented[words] == flags, " ".join(words)


def test_every_documented_command_exists():
    commands = {words for words, _, _ in COMMANDS}
    for cell in first_cells():
        if not cell.startswith(("low_", "empty_", "tubing_", "catheter_", "discrepancy_", "reminder_")):
            assert words_of(cell) in commands, cell


UNITS = {"mL": 1000, "µL": 1, "%": 10, "days": 1}


def test_the_settings_table_gives_the_firmware_s_ranges():
    sys.path.insert(0, str(ROOT / "firmware"))
    from pump import druglib

    rows = [[c.strip().strip("`") for c in line.strip("|").split("|")] for line in DOC.splitlines()
            if re.match(r"\| `[a-z_]+` \| `--", line)]
    assert {row[0] for row in rows} == set(druglib.CONFIG_RANGES)
    for name, option, default, span in rows:
        low, high = re.findall(r"[\d.]+", span)[:2]
        unit = UNITS[span.split()[1].rstrip(",")]
        assert (Fraction(low) * unit, Fraction(high) * unit) == druglib.CONFIG_RANGES[name], name
