"""Records survive torn writes and corruption: the newest valid slot wins."""

import os

from pump.store import Store


def test_round_trip_and_sequence(tmp_path):
    store = Store(str(tmp_path / "data"))
    assert store.load() is None
    for i in range(5):
        store.save(b"record %d" % i)
    again = Store(str(tmp_path / "data"))
    assert again.load() == b"record 4"
    assert again.seq == 5


def test_a_torn_write_falls_back_to_the_previous_record(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.save(b"older")
    store.save(b"newer")
    newest = str(tmp_path / "data" / "state.a")  # seq 2 lands in slot a
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) - 3)
    assert Store(str(tmp_path / "data")).load() == b"older"


def test_a_flipped_bit_falls_back_to_the_previous_record(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.save(b"older")
    store.save(b"newer")
    path = tmp_path / "data" / "state.a"
    data = bytearray(path.read_bytes())
    data[12] ^= 0x01
    path.write_bytes(bytes(data))
    again = Store(str(tmp_path / "data"))
    assert again.load() == b"older"
    assert again.repaired


def test_no_valid_slot_is_none(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.save(b"x")
    (tmp_path / "data" / "state.b").write_bytes(b"garbage")
    assert Store(str(tmp_path / "data")).load() is None


def test_the_next_write_goes_to_the_other_slot(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.save(b"one")
    a = tmp_path / "data" / "state.b"
    before = a.read_bytes()
    store.save(b"two")
    assert a.read_bytes() == before
