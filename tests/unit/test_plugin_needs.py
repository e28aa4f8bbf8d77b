"""The plugin holds tests to what they declare of their rig, and skips what a rig cannot do."""

import re

import pytest

from pumpsim.hil import plugin


class FakeRig:
    def __init__(self, can):
        self.can, self.calls = can, []

    def hello(self):
        return {"rig": "fake", "can": self.can}

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


@pytest.mark.parametrize("call, need", [
    (lambda rig: rig.stall("on"), "motor-stall"),
    (lambda rig: rig.advance(1000), "stepped-clock"),
    (lambda rig: rig.power_cycle(), "power-cut"),
    (lambda rig: rig.power_cycle(1), "power-cut-mid-write"),
    (lambda rig: rig.battery(2800), "battery"),
    (lambda rig: rig.corrupt_flash("log"), "corrupt-flash"),
    (lambda rig: rig.hang(), "hang"),
    (lambda rig: rig.tones(), "tones"),
    (lambda rig: rig.reset(), "reset"),
])
def test_a_request_needs_its_declaration(call, need):
    raw = FakeRig(list(plugin.NEEDS))
    with pytest.raises(pytest.fail.Exception, match="pumpsim_needs\\('%s'\\)" % need):
        call(plugin.DeclaredRig(raw, set(plugin.NEEDS) - {need}, "t"))
    assert raw.calls == []  # refused before the rig was asked
    call(plugin.DeclaredRig(raw, {need}, "t"))
    assert len(raw.calls) == 1


def test_reading_the_rig_needs_nothing():
    raw = FakeRig([])
    rig = plugin.DeclaredRig(raw, set(), "t")
    rig.measure()
    rig.time()
    assert [name for name, _ in raw.calls] == ["measure", "time"]


def _bench(can):
    bench = plugin.Bench.__new__(plugin.Bench)
    bench.raw_rig = FakeRig(can)
    return bench


def test_a_rig_that_cannot_skips_with_what_is_missing():
    with pytest.raises(pytest.skip.Exception, match="cannot do what the test needs: power-cut, stepped-clock"):
        _bench(["motor-stall"]).skip_unless_able({"stepped-clock", "power-cut", "motor-stall"})
    _bench(["motor-stall", "power-cut", "stepped-clock"]).skip_unless_able({"stepped-clock", "power-cut"})


def test_an_unknown_need_is_a_usage_error():
    class Node:
        nodeid = "t"

        def iter_markers(self, name):
            return [pytest.mark.pumpsim_needs("stepped-clock", "teleport").mark]

    with pytest.raises(pytest.UsageError, match="unknown pumpsim_needs teleport"):
        plugin.declared_needs(Node())


class Config:
    def __init__(self, timeout):
        self.timeout = timeout

    def getini(self, name):
        assert name == "timeout"
        return self.timeout


class Marked:
    nodeid = "t"

    def __init__(self, *marks):
        self.marks = marks

    def get_closest_marker(self, name):
        return next((m.mark for m in self.marks if m.name == name), None)


@pytest.mark.parametrize("days, timeout_s, runs", [
    ("0.001", "86.4", True),  # the days take exactly the timeout
    ("0.001", "86.399", False),  # a millisecond less
    ("0.0010001", "86.4", False),  # a step more
    ("10", "", False),  # no timeout: never in real time
])
def test_a_real_time_board_runs_pump_days_only_within_the_timeout(days, timeout_s, runs):
    from fractions import Fraction

    node, config = Marked(), Config(timeout_s)
    if runs:
        plugin.skip_unless_time(node, config, Fraction(days), True, "board rpi_pico")
    else:
        with pytest.raises(pytest.skip.Exception, match=r"moves %s pump days; board rpi_pico runs in real time"
                                                        % re.escape(days)):
            plugin.skip_unless_time(node, config, Fraction(days), True, "board rpi_pico")
    plugin.skip_unless_time(node, config, Fraction(days), False, "board emu")  # a stepped clock runs them all


def test_the_timeout_marker_beats_the_ini_setting():
    from fractions import Fraction

    node = Marked(pytest.mark.timeout(900))
    plugin.skip_unless_time(node, Config("120"), Fraction(900, 86400), True, "board rpi_pico")
    with pytest.raises(pytest.skip.Exception):
        plugin.skip_unless_time(node, Config("120"), Fraction(901, 86400), True, "board rpi_pico")


@pytest.mark.parametrize("days", [-1, "ten", True, None])
def test_pumpsim_days_takes_one_non_negative_number(days):
    node = Marked(pytest.mark.pumpsim_days(days))
    with pytest.raises(pytest.UsageError, match="pumpsim_days"):
        plugin.declared_days(node)


def test_a_board_without_a_virtual_clock_skips_a_stepped_clock_test_before_it_boots():
    with pytest.raises(pytest.skip.Exception, match=r"board rpi_pico cannot do what the test needs: "
                                                    r"stepped-clock \(its board.json has no virtual_clock\)"):
        plugin.skip_unless_board_can("rpi_pico", {"stepped-clock", "power-cut", "tones"})
    plugin.skip_unless_board_can("rpi_pico", {"power-cut", "tones", "battery", "hang", "volatile-rtc"})
    plugin.skip_unless_board_can("emu", set(plugin.NEEDS))
