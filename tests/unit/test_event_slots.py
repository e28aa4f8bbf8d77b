"""The event log's slots each carry a CRC (docs/architecture.md): a slot whose bytes went bad is
skipped and counted, and the other events still read back."""

from pump.eventlog import SLOT_BYTES, EventLog


def test_a_corrupted_slot_is_skipped_and_counted(tmp_path):
    log = EventLog(str(tmp_path), slots=8)
    for n in range(3):
        log.append(1000 * n, "tick", {"n": n})
    path = tmp_path / "events.log"
    data = bytearray(path.read_bytes())
    data[SLOT_BYTES + 20] ^= 0x01  # inside the second event's text
    path.write_bytes(bytes(data))
    again = EventLog(str(tmp_path), slots=8)
    assert [e["n"] for e in again.read()] == [0, 2]
    assert again.bad_slots == 1
