"""docs/architecture.md's table of the virtual board's wire messages is the ROM's and the
supervisor's: every message the board sends is listed, and every one listed is sent and handled."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The clock's replies, not messages from the board.
REPLIES = {"STEPPED", "RUNNING", "STEPPED_ARMED", "RUNNING_ARMED"}


def documented():
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("| from board | meaning | reply |", 1)[1].split("\n\n", 1)[0]
    kinds = set()
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        kinds |= set(re.findall(r"`(\w)`", first))
    return kinds


def sent():
    source = (ROOT / "boards" / "emu" / "rom" / "_wire.py").read_text()
    return {kind for name, kind in re.findall(r'^(\w+) = ord\("(\w)"\)', source, re.M) if name not in REPLIES}


def handled():
    source = (ROOT / "host" / "targets" / "emu" / "supervisor.py").read_text()
    return {chr(int(code)) for code in re.findall(r"kind == (\d+):", source)}


def test_the_wire_table_lists_every_message_the_board_sends():
    assert documented() == sent()


def test_every_message_the_board_sends_is_handled():
    assert sent() <= handled() and handled() <= sent()
