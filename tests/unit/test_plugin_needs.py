"""The plugin holds tests to what they declare of their rig, and skips what a rig cannot do."""

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
