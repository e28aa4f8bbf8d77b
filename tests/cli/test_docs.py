"""docs/cli.md is the CLI's contract: every command with its options and their choices, which
commands need the key, and the settings' ranges and defaults, as the code has them."""

import inspect
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


def settings_rows():
    """The settings table: setting, option, default, range."""
    return [[c.strip().strip("`") for c in line.strip("|").split("|")] for line in DOC.splitlines()
            if re.match(r"\| `[a-z_]+` \| `--", line)]


def test_the_settings_table_gives_the_firmware_s_ranges():
    sys.path.insert(0, str(ROOT / "firmware"))
    from pump import druglib

    rows = settings_rows()
    assert {row[0] for row in rows} == set(druglib.CONFIG_RANGES)
    for name, option, default, span in rows:
        low, high = re.findall(r"[\d.]+", span)[:2]
        unit = UNITS[span.split()[1].rstrip(",")]
        assert (Fraction(low) * unit, Fraction(high) * unit) == druglib.CONFIG_RANGES[name], name


def cells_of(words):
    return " ".join(cell for cell in first_cells() if words_of(cell) == words)


def test_every_option_with_choices_shows_the_parser_s():
    for words, _, options in COMMANDS:
        cell = cells_of(words)
        for names, spec in options:
            if "choices" not in spec:
                continue
            if names[0].startswith("--"):  # `--target state\|both\|log`
                shown = re.findall(re.escape(names[0]) + r" ([\w\\|-]+)", cell)
            else:  # `rig rtc [kept\|volatile]`
                shown = [token.strip("[]") for token in cell.split() if "\\|" in token]
            assert set(spec["choices"]) in [set(s.split("\\|")) for s in shown], \
                "%s %s: the doc shows %s, the parser takes %s" % (" ".join(words), names[0], shown, spec["choices"])


def test_the_commands_said_to_need_the_key_are_those_that_ask_for_it():
    (line,) = [line for line in DOC.splitlines() if "are authenticated with the board's key" in line]
    said = [tuple(name.split()) for name in re.findall(r"`([a-z -]+)`", line)]
    for words, handler, _ in COMMANDS:
        asks = "need_key=True" in inspect.getsource(handler)  # Target(args).client(need_key=True)
        assert asks == any(words[: len(name)] == name for name in said), \
            "%s %s the key, the doc says otherwise" % (" ".join(words), "asks for" if asks else "does not ask for")


def test_the_settings_table_gives_the_firmware_s_defaults():
    sys.path.insert(0, str(ROOT / "firmware"))
    from pump import core

    pump = core.Pump(None, None, None, 500, None)
    firmware = {"low_reservoir_ul": Fraction(pump.low_threshold_nl, 1000),
                "empty_reservoir_ul": Fraction(pump.empty_threshold_nl, 1000),
                "tubing_ul": pump.tubing_ul, "catheter_ul": pump.catheter_ul,
                "discrepancy_limit_permille": pump.discrepancy_limit_permille,
                "reminder_lead_days": pump.reminder_lead_days}
    rows = settings_rows()
    assert {row[0] for row in rows} == set(firmware)
    for name, _, default, _ in rows:
        value = None if default == "unset" else Fraction(default.split()[0]) * UNITS[default.split()[1]]
        assert value == firmware[name], "%s: the doc's default is %s, the firmware's is %s" \
            % (name, default, firmware[name])
