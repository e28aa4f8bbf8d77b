"""The bench's wiring: the rig Pico's pins (boards/rig_pico/pins.csv, by rig signal) joined with
the pump board's (boards/<dut>/pins.csv, by role) through the pump board's wiring.csv. The
table in docs/bench.md is generated from here (`python -m pumpsim.wiring`)."""

import csv
import sys
from pathlib import Path

import pumpsim.boards

BOARDS = Path(pumpsim.boards.__file__).resolve().parent


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def pins(board):
    return {row["role"]: int(row["pin"]) for row in _rows(BOARDS / board / "pins.csv")}


def bench(dut="rpi_pico", rig="rig_pico"):
    """[(rig signal, rig pin or None, pump role, pump pin or None, note)] in wiring.csv's order;
    ValueError when a rig signal has no pin on the rig."""
    rig_pins, dut_pins = pins(rig), pins(dut)
    joined = []
    for row in _rows(BOARDS / dut / "wiring.csv"):
        signal, role = row["rig_signal"], row["board_role"]
        if signal != "ground" and signal not in rig_pins:
            raise ValueError("%s/wiring.csv: rig signal %r has no pin in %s/pins.csv" % (dut, signal, rig))
        joined.append((signal, rig_pins.get(signal), role, dut_pins.get(role), row["note"]))
    return joined


def markdown(dut="rpi_pico", rig="rig_pico"):
    def gp(pin, fallback):
        return "GP%d" % pin if pin is not None else fallback

    lines = ["| rig signal | rig Pico | pump Pico | role | note |", "| --- | --- | --- | --- | --- |"]
    for signal, rig_pin, role, dut_pin, note in bench(dut, rig):
        lines.append("| %s | %s | %s | %s | %s |" % (signal, gp(rig_pin, "GND" if signal == "ground" else "-"),
                                                    gp(dut_pin, role), role, note))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
