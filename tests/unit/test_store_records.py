"""A/B records: a torn write or a flipped bit never loses the previous record, and the accounting
is written ahead of each stroke, so a power cut never makes the pump count less than it delivered."""

import os

import pytest

from pump import store as store_module
from pump.core import Pump
from pump.eventlog import EventLog
from pump.store import Store

from .fakes import DAY_MS, FakeClock

RECORDS = [b"first record", b"second, a little longer", b"third" * 40]


def slot_files(data):
    return sorted(p for p in data.iterdir() if p.name.startswith("state."))


def newest_file(data):
    """The slot file holding the newest record: the one whose loss changes what load() returns."""
    for path in slot_files(data):
        saved = path.read_bytes()
        path.write_bytes(b"")
        try:
            if Store(str(data)).load() != RECORDS[-1]:
                return path
        finally:
            path.write_bytes(saved)
    raise AssertionError("no slot holds the newest record")


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "data"
    store = Store(str(data))
    for record in RECORDS:
        store.save(record, stroke=True)  # one slot each: the newest and the one before
    return data


def test_the_data_directory_is_created(tmp_path):
    Store(str(tmp_path / "data"))
    assert (tmp_path / "data").is_dir()
    Store(str(tmp_path / "data"))  # and an existing one is fine


def test_nothing_saved_loads_as_none(tmp_path):
    store = Store(str(tmp_path / "data"))
    assert store.load() is None and not store.repaired


def test_the_newest_record_wins_after_a_restart(data):
    assert len(slot_files(data)) == 2
    assert Store(str(data)).load() == RECORDS[-1]


@pytest.mark.parametrize("where", ["magic", "seq", "length", "payload", "crc"])
def test_a_flipped_bit_anywhere_falls_back_to_the_previous_record(data, where):
    path = newest_file(data)
    raw = bytearray(path.read_bytes())
    offset = {"magic": 0, "seq": 4, "length": 8, "payload": 20, "crc": len(raw) - 5}[where]
    raw[offset] ^= 0x10
    path.write_bytes(bytes(raw))
    store = Store(str(data))
    assert store.load() == RECORDS[-2]
    assert store.repaired


@pytest.mark.parametrize("where", ["magic", "seq", "payload", "crc"])
def test_a_newest_record_gone_bad_after_it_was_written_whole_is_reported_lost(data, where):
    # Written whole, it may have been followed by the stroke it announced: the pump must know.
    path = newest_file(data)
    raw = bytearray(path.read_bytes())
    raw[{"magic": 0, "seq": 5, "payload": 20, "crc": len(raw) - 5}[where]] ^= 0x10
    path.write_bytes(bytes(raw))
    store = Store(str(data))
    assert store.load() == RECORDS[-2] and store.lost_newer


def test_a_torn_newest_write_or_a_bad_older_copy_loses_nothing_that_happened(data):
    newest = newest_file(data)
    whole = newest.read_bytes()
    for cut in (1, 10, 14, len(whole) - 1):
        newest.write_bytes(whole[:cut])  # the power went while writing it: nothing followed
        store = Store(str(data))
        assert store.load() == RECORDS[-2] and store.repaired and not store.lost_newer, cut
    newest.write_bytes(whole)
    older = [p for p in slot_files(data) if p != newest][0]
    raw = bytearray(older.read_bytes())
    raw[20] ^= 0x10
    older.write_bytes(bytes(raw))
    store = Store(str(data))
    assert store.load() == RECORDS[-1] and store.repaired and not store.lost_newer


def test_a_change_is_written_to_both_slots_and_survives_either_going_bad(data):
    # A change of settings must not be undone by one bad cell: the older copy would give back the
    # programme or the drug from before it.
    store = Store(str(data))
    store.load()
    store.save(b"the new programme")
    for path in slot_files(data):
        kept = path.read_bytes()
        raw = bytearray(kept)
        raw[20] ^= 0x10
        path.write_bytes(bytes(raw))
        again = Store(str(data))
        assert again.load() == b"the new programme" and again.repaired and not again.lost_newer
        path.write_bytes(kept)


def test_a_write_torn_at_any_byte_falls_back_to_the_previous_record(data):
    path = newest_file(data)
    whole = path.read_bytes()
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        assert Store(str(data)).load() == RECORDS[-2], cut
    path.write_bytes(whole + b"\x00")  # a longer file is no better
    assert Store(str(data)).load() == RECORDS[-2]


def test_after_a_bad_slot_the_next_write_replaces_it_not_the_good_one(data):
    bad = newest_file(data)
    bad.write_bytes(b"torn")
    good = [p for p in slot_files(data) if p != bad][0]
    kept = good.read_bytes()
    store = Store(str(data))
    assert store.load() == RECORDS[-2]
    store.save(b"fourth", stroke=True)
    assert good.read_bytes() == kept
    assert Store(str(data)).load() == b"fourth"


def test_both_slots_bad_is_reported(data):
    for path in slot_files(data):
        path.write_bytes(b"rubbish")
    store = Store(str(data))
    assert store.load() is None and store.repaired
    assert store.check() == 2


# -- written ahead of each stroke ---------------------------------------------------------------

class PowerCut(Exception):
    pass


class CutOnPulse:
    """A motor on a board whose power goes at the Nth pulse, before the motor turns."""

    def __init__(self, cut_at):
        self.cut_at = cut_at
        self.delivered = 0

    def stroke(self):
        if self.delivered + 1 == self.cut_at:
            raise PowerCut
        self.delivered += 1
        return True


class Motor:
    def __init__(self):
        self.delivered = 0

    def stroke(self):
        self.delivered += 1
        return True


def infusing_pump(data, clock, motor):
    pump = Pump(clock, motor, Store(str(data)), 500, EventLog(str(data)))
    pump.boot()
    return pump


def reboot(data, clock):
    pump = Pump(clock, Motor(), Store(str(data)), 500, EventLog(str(data)))
    pump.boot()
    return pump


@pytest.mark.parametrize("cut_at", [1, 2, 37])
def test_a_power_cut_at_the_pulse_counts_the_stroke_about_to_be_made(tmp_path, cut_at):
    data, clock, motor = tmp_path / "data", FakeClock(), CutOnPulse(cut_at)
    pump = infusing_pump(data, clock, motor)
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    clock.now = DAY_MS
    with pytest.raises(PowerCut):
        pump.run_due(clock.now)
    again = reboot(data, clock)
    assert motor.delivered == cut_at - 1
    assert again.strokes == cut_at  # one more than delivered: never fewer
    assert again.reservoir_nl == 20_000_000 - cut_at * 500


@pytest.mark.parametrize("fraction", [0, 1, 2, 3])
def test_a_power_cut_inside_the_write_loses_nothing(tmp_path, monkeypatch, fraction):
    data, clock, motor = tmp_path / "data", FakeClock(), Motor()
    pump = infusing_pump(data, clock, motor)
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    clock.now = 10 * 172_800
    pump.run_due(clock.now)
    assert motor.delivered == 10

    class TornFile:
        def __init__(self, path, mode):
            self._f = open(path, mode)

        def write(self, data):
            self._f.write(data[: len(data) * fraction // 4])
            self._f.close()
            raise PowerCut

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    monkeypatch.setattr(store_module, "open", TornFile, raising=False)
    clock.now += 172_800
    with pytest.raises(PowerCut):
        pump.run_due(clock.now)
    monkeypatch.undo()
    assert motor.delivered == 10  # the write comes first: the pulse never happened
    again = reboot(data, clock)
    assert again.strokes == 10 and again.delivered_nl == 5000


def test_the_per_stroke_record_is_small_and_fixed_size(tmp_path):
    data, clock, motor = tmp_path / "data", FakeClock(), Motor()
    pump = infusing_pump(data, clock, motor)
    pump.refill(20000, 2000)
    pump.program_steps("continuous", [(0, 500)])
    sizes = set()
    for k in range(1, 6):
        clock.now = k * 172_800
        pump.run_due(clock.now)
        sizes |= {os.path.getsize(p) for p in slot_files(data)}
    assert motor.delivered == 5 and len(sizes) == 1 and sizes.pop() < 1024
