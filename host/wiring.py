"""The bench's wiring: the rig Pico's pins (boards/rig_pico/pins.csv, by rig signal) joined with
the pump board's (boards/<dut>/pins.csv, by role) through the pump board's wiring.csv. The
table in docs/bench.md is generated from here (`python -m pumpsim.wiring`), and so is its drawing,
docs/bench-wiring.svg (`python -m pumpsim.wiring --svg`)."""

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
    """[(rig signal, rig pin or None, pump role, pump pin or None, via, note)] in wiring.csv's order;
    ValueError when a rig signal has no pin on the rig."""
    rig_pins, dut_pins = pins(rig), pins(dut)
    joined = []
    for row in _rows(BOARDS / dut / "wiring.csv"):
        signal, role = row["rig_signal"], row["board_role"]
        if signal != "ground" and signal not in rig_pins:
            raise ValueError("%s/wiring.csv: rig signal %r has no pin in %s/pins.csv" % (dut, signal, rig))
        joined.append((signal, rig_pins.get(signal), role, dut_pins.get(role), row.get("via") or "", row["note"]))
    return joined


def markdown(dut="rpi_pico", rig="rig_pico"):
    def gp(pin, fallback):
        return "GP%d" % pin if pin is not None else fallback

    lines = ["| rig signal | rig Pico | through | pump Pico | role | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    for signal, rig_pin, role, dut_pin, via, note in bench(dut, rig):
        lines.append("| %s | %s | %s | %s | %s | %s |" % (signal, gp(rig_pin, "GND" if signal == "ground" else "-"),
                                                         via or "a wire", gp(dut_pin, role), role, note))
    return "\n".join(lines) + "\n"


_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#444444", "#8c564b", "#e377c2")


def svg(dut="rpi_pico", rig="rig_pico"):
    """The bench drawn: the rig Pico on the left, the pump Pico on the right, a wire per row."""
    rows = bench(dut, rig)
    top, step, width = 70, 44, 760
    height = top + step * len(rows) + 20
    left, right = (30, 250), (width - 250, width - 30)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="13">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>']
    for (x0, x1), title in ((left, "rig Pico (%s)" % rig), (right, "pump Pico (%s)" % dut)):
        out.append('<rect x="%d" y="30" width="%d" height="%d" rx="8" fill="#eef3e8" stroke="#2b5d2b" '
                   'stroke-width="2"/>' % (x0, x1 - x0, height - 45))
        out.append('<text x="%d" y="52" text-anchor="middle" font-weight="bold">%s</text>' % ((x0 + x1) // 2, title))
    for i, (signal, rig_pin, role, dut_pin, via, _note) in enumerate(rows):
        y = top + step * i + step // 2
        colour = _COLOURS[i % len(_COLOURS)]
        rig_label = "GND" if signal == "ground" else "GP%d" % rig_pin
        dut_label = "GP%d %s" % (dut_pin, role) if dut_pin is not None else role
        out.append('<text x="%d" y="%d" text-anchor="end">%s %s</text>' % (left[1] - 12, y + 4, signal, rig_label))
        out.append('<text x="%d" y="%d">%s</text>' % (right[0] + 12, y + 4, dut_label))
        if via:
            out.append('<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="%s">%s</text>'
                       % (width // 2, y - 7, colour, via))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                   % (left[1], y, right[0], y, colour))
        for x in (left[1], right[0]):
            out.append('<circle cx="%d" cy="%d" r="5" fill="%s"/>' % (x, y, colour))
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(svg() if sys.argv[1:] == ["--svg"] else markdown())
