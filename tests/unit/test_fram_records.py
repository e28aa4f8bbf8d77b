"""Records on the FRAM (docs/architecture.md, "Records"): the driver speaks the MB85RS protocol to
the virtual board's device model, a write torn at any byte never loses the previous record nor
reads as a stroke that was made, a failing cell still does, and records left on the flash move
onto the FRAM."""

import importlib
import sys

import pytest

from pump import nvram
from pump.eventlog import EventLog
from pump.records import FLASH, FRAM, Records
from pump.store import RegionSlot, Store

from .conftest import ROOT

ROM = ROOT / "boards" / "emu" / "rom"


@pytest.fixture
def fram_model():
    """The virtual board's FRAM chip (boards/emu/rom/_fram.py), loaded on CPython."""
    sys.path.insert(0, str(ROM))
    try:
        yield importlib.import_module("_fram")
    finally:
        sys.path.remove(str(ROM))


class Wiring:
    """A DummySPI and a DummyPin, as micropython-lib's driver tests use, wired to the chip."""

    def __init__(self, chip):
        self.chip = chip

    # the chip select
    def value(self, level):
        self.chip.select(not level)

    # the bus
    def write(self, buf):
        self.chip.clock_in(bytes(buf))

    def readinto(self, buf):
        self.chip.clock_out(buf)


@pytest.fixture
def fram(fram_model, tmp_path):
    chip = fram_model.Fram(str(tmp_path / "fram.bin"), 131072)
    wiring = Wiring(chip)
    return nvram.Fram(wiring, wiring, 131072)


def test_the_driver_finds_the_chip_by_its_id(fram, fram_model, tmp_path):
    assert fram.probe()
    nothing = Wiring(fram_model.Fram(str(tmp_path / "other.bin"), 16))
    nothing.chip.clock_out = lambda buf: buf.__setitem__(slice(None), b"\xff" * len(buf))
    assert not nvram.Fram(nothing, nothing, 16).probe()  # a bus with nothing on it reads 0xFF


def test_bytes_written_read_back_and_persist_in_the_file(fram, tmp_path):
    fram.write(131070, (b"ab", b"cd"))  # across the end: the address wraps, as on the chip
    assert bytes(fram.read(131070, 2)) == b"ab" and bytes(fram.read(0, 2)) == b"cd"
    raw = (tmp_path / "fram.bin").read_bytes()
    assert len(raw) == 131072 and raw[:2] == b"cd" and raw[-2:] == b"ab"


def test_a_write_without_its_enable_latch_changes_nothing(fram):
    spi = fram._spi
    spi.value(0)
    spi.write(bytes([0x02, 0, 0, 0]) + b"xyz")  # WRITE with no WREN before it
    spi.value(1)
    assert bytes(fram.read(0, 3)) == bytes(3)


def test_formatting_writes_the_directory_last_and_a_format_is_kept(fram):
    regions, formatted = nvram.regions(fram)
    assert formatted and set(regions) == {name for name, _, _ in nvram.LAYOUT}
    assert nvram.directory(fram) == {name: (offset, size) for name, offset, size in nvram.LAYOUT}
    regions[b"stta"].write(0, (b"kept",))
    assert not nvram.regions(fram)[1]  # formatted already: the records stay
    assert bytes(fram.read(0x0200, 4)) == b"kept"


def test_regions_do_not_overlap_and_fit_the_chip():
    spans = sorted((offset, offset + size) for _, offset, size in nvram.LAYOUT)
    assert spans[0][0] >= nvram.DIR_BYTES
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start
    assert spans[-1][1] <= 131072


def _store(fram):
    regions, _ = nvram.regions(fram)
    return Store(slots=(RegionSlot(regions[b"stta"]), RegionSlot(regions[b"sttb"]))), regions


def test_a_write_torn_at_every_byte_keeps_the_previous_record(fram):
    store, regions = _store(fram)
    store.save(b"settings" * 10)  # both slots
    store.save(b"stroke 1" * 10, stroke=True)
    # The next stroke's record, as it would be written whole, into the slot it goes to.
    slot = regions[b"stta" if (store.seq + 1) % 2 == 0 else b"sttb"]
    before = bytes(slot.read(0, 200))
    ram = _Ram()
    probe = Store(slots=(RegionSlot(nvram.Region(ram, 0, 200)), RegionSlot(nvram.Region(ram, 200, 200))))
    probe.seq = store.seq
    probe.save(b"stroke 2" * 10, stroke=True)
    whole = ram.read((probe.seq & 1) * 200, 200)
    length = len(b"stroke 2" * 10) + 11 + 8
    for torn in range(length + 1):
        slot.write(0, (whole[:torn],))
        again = Store(slots=(RegionSlot(regions[b"stta"]), RegionSlot(regions[b"sttb"])))
        loaded = again.load()
        # The new record counts only once its very last byte is there; until then the previous
        # one does, and a torn write is never taken for a stroke that was made.
        assert loaded == (b"stroke 2" if torn == length else b"stroke 1") * 10, torn
        assert not again.lost_newer, torn
        slot.write(0, (before,))


class _Recorder:
    """A region that keeps what each write sends, in order."""

    def __init__(self, region):
        self.region = region
        self.size = region.size
        self.sent = []

    def read(self, at, n):
        return self.region.read(at, n)

    def write(self, at, parts):
        self.sent.append((at, b"".join(bytes(p) for p in parts)))
        self.region.write(at, parts)


def _recorded_store(fram):
    regions, _ = nvram.regions(fram)
    slots = [regions[b"stta"], regions[b"sttb"]]
    recorders = [_Recorder(r) for r in slots]
    return Store(slots=tuple(RegionSlot(r) for r in recorders)), slots, recorders


BLOB = b"settings" * 40


def test_a_stroke_record_rewrites_only_its_counters_and_tears_as_a_whole_write_would(fram):
    store, slots, recorders = _recorded_store(fram)
    store.save(b"counts 0" * 2, more=BLOB)  # both slots, whole
    store.save(b"counts 1" * 2, stroke=True, more=BLOB)
    i = (store.seq + 1) & 1  # the slot the next stroke's record goes to
    before = bytes(slots[i].read(0, 400))
    recorders[i].sent.clear()
    store.save(b"counts 2" * 2, stroke=True, more=BLOB)
    sent = recorders[i].sent
    # The header and counters, then the CRC and closing seq: the 320 B of settings stay in place.
    assert [(at, len(data)) for at, data in sent] == [(0, 11 + 16), (11 + 16 + len(BLOB), 8)]
    # What lands is what a whole write of that record would have left.
    ram = _Ram()
    probe = Store(slots=(RegionSlot(nvram.Region(ram, 0, 400)), RegionSlot(nvram.Region(ram, 400, 400))))
    probe.seq = store.seq - 1
    probe.save(b"counts 2" * 2, stroke=True, more=BLOB)
    whole = ram.read(i * 400, 11 + 16 + len(BLOB) + 8)
    assert bytes(slots[i].read(0, len(whole))) == whole
    # Torn after any byte sent, the previous stroke's record is the one that loads.
    stream = [(at + k, data[k]) for at, data in sent for k in range(len(data))]
    for torn in range(len(stream) + 1):
        slots[i].write(0, (before,))
        for addr, byte in stream[:torn]:
            slots[i].write(addr, (bytes([byte]),))
        again = Store(slots=(RegionSlot(slots[0]), RegionSlot(slots[1])))
        assert again.load() == (b"counts 2" if torn == len(stream) else b"counts 1") * 2 + BLOB, torn
        assert not again.lost_newer, torn


def test_settings_that_went_bad_in_a_slot_are_written_whole_after_a_scrub(fram):
    store, slots, recorders = _recorded_store(fram)
    store.save(b"counts 0" * 2, more=BLOB)
    i = (store.seq + 1) & 1
    slots[i].write(11 + 16 + 100, (b"X",))  # a failing cell inside the settings kept there
    assert store.check() == 1
    recorders[i].sent.clear()
    store.save(b"counts 1" * 2, stroke=True, more=BLOB)
    assert [len(data) for _, data in recorders[i].sent] == [11 + 16 + len(BLOB) + 8]
    again = Store(slots=(RegionSlot(slots[0]), RegionSlot(slots[1])))
    assert again.load() == b"counts 1" * 2 + BLOB and not again.repaired


def test_new_settings_are_written_whole_to_each_slot_before_strokes_keep_them(fram):
    store, slots, recorders = _recorded_store(fram)
    store.save(b"counts 0" * 2, more=BLOB)
    newer = b"changed!" * 40
    for r in recorders:
        r.sent.clear()
    for n in range(1, 5):
        store.save(b"counts %d" % n * 2, stroke=True, more=newer)
    lengths = [len(d) for r in recorders for _, d in r.sent]
    whole = 11 + 16 + len(newer) + 8
    assert sorted(lengths) == sorted([whole, whole, 27, 8, 27, 8])
    assert Store(slots=(RegionSlot(slots[0]), RegionSlot(slots[1]))).load() == b"counts 4" * 2 + newer


@pytest.mark.parametrize("where", ["seq", "payload", "crc"])
def test_a_record_gone_bad_after_it_was_written_whole_is_reported_lost(fram, where):
    store, regions = _store(fram)
    store.save(b"older" * 10)
    store.save(b"newer" * 10, stroke=True)
    slot = regions[b"stta" if store.seq % 2 == 0 else b"sttb"]
    offset = {"seq": 5, "payload": 20, "crc": 11 + 50}[where]
    byte = slot.read(offset, 1)
    slot.write(offset, (bytes([byte[0] ^ 0x10]),))
    again = Store(slots=(RegionSlot(regions[b"stta"]), RegionSlot(regions[b"sttb"])))
    assert again.load() == b"older" * 10 and again.repaired and again.lost_newer


def test_a_record_too_big_for_its_slot_is_refused_before_anything_is_written(fram):
    store, regions = _store(fram)
    store.save(b"kept")
    with pytest.raises(ValueError):
        store.save(bytes(nvram.STATE_SLOT_BYTES))
    assert Store(slots=(RegionSlot(regions[b"stta"]), RegionSlot(regions[b"sttb"]))).load() == b"kept"


class _Ram:
    """Bytes behind nvram.Region, for building a record as it would be written."""

    def __init__(self):
        self.mem = bytearray(1024)

    def read(self, addr, n):
        return bytes(self.mem[addr : addr + n])

    def read_into(self, addr, buf):
        buf[:] = self.mem[addr : addr + len(buf)]

    def write(self, addr, parts):
        for part in parts:
            self.mem[addr : addr + len(part)] = part
            addr += len(part)


def test_the_event_log_on_the_fram_reads_back_after_a_restart(fram):
    regions, _ = nvram.regions(fram)
    log = EventLog(region=regions[b"evts"])
    for n in range(130):  # past the ring's 128 slots
        log.append(1000 * n, "tick", {"n": n})
    again = EventLog(region=regions[b"evts"])
    assert [e["n"] for e in again.read()] == list(range(2, 130))
    assert again.newest_ms == 129000 and again.seq == 130


def test_records_on_the_flash_move_onto_the_fram_and_leave_the_flash(fram, tmp_path):
    data = str(tmp_path / "data")
    on_flash = Records(None, data)
    assert on_flash.medium == FLASH
    on_flash.state.save(b"the pump's state")
    on_flash.clock.save(b"0123456789abcdef", stroke=True)
    on_flash.log.append(5000, "refill", {"volume_ul": 20000})
    moved = Records(fram, data)
    assert moved.medium == FRAM and sorted(moved.moved) == ["clock", "log", "state"]
    assert moved.state.load() == b"the pump's state"
    assert moved.clock.load() == b"0123456789abcdef"
    assert [(e["event"], e["volume_ul"], e["t_ms"]) for e in moved.log.read()] == [("refill", 20000, 5000)]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["fram.on"]
    assert not Records(fram, data).moved  # nothing left to move


def test_a_board_whose_fram_held_the_records_and_is_gone_reports_them_lost(fram, tmp_path):
    data = str(tmp_path / "data")
    Records(fram, data).state.save(b"on the fram")
    gone = Records(None, data)
    assert gone.lost and gone.medium == FLASH
    gone.state.lost = gone.lost
    assert gone.state.load() is None and gone.state.repaired  # the pump boots as memory lost
    assert not Records(None, data).lost  # said once: from then on the pump runs on the flash


def test_the_layout_table_in_the_architecture_doc_is_the_firmware_s():
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = {}
    table = text[text.index("| region | offset |"):].split("\n\n")[0].splitlines()[2:]
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`(\w+)`", cells[0])
        offsets = [int(o, 16) for o in cells[1].split(",")]
        size = int(cells[2].split()[0])
        for name, offset in zip(names, offsets):
            rows[name.encode()] = (offset, size)
    assert rows == {name: (offset, size) for name, offset, size in nvram.LAYOUT}
    assert "| directory | 0x0000 | %d |" % nvram.DIR_BYTES in text
