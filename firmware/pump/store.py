# Non-volatile records that survive a reset or a power cut at any instant.
#
# Two slots, written in turn: magic, seq, length, kind, payload, CRC-32, and the seq once more
# (big-endian, so that its low byte comes last). A write torn by a power cut leaves a slot whose
# CRC or closing seq fails; the other slot still holds the previous record. Loading takes the
# valid slot with the highest seq. A slot is a file of the flash filesystem (a torn write is a
# short file) or a fixed span of an FRAM (a torn write is a prefix of the new record over the old
# one's bytes): the closing seq tells either kind of torn write from a record that was written
# whole and went bad later. In place, a stroke's record whose settings are already in its slot
# rewrites the rest only, in the same order.
import os
import struct

import binascii

_MAGIC = b"PSR3"
_HEAD = "<4sIHB"
_HEAD_LEN = 11
_TAIL_LEN = 8  # CRC-32, seq
# What a record is: the accounting of a stroke about to be made, written to one slot; or a change
# of settings or state, written to both slots in turn (the first, then its twin), so that either
# copy alone holds it.
_STROKE = 0
_FIRST = 1
_TWIN = 2


class FileSlot:
    """A slot that is a file: written whole, in one call."""

    sized = True  # the medium keeps the record's length

    def __init__(self, path):
        self._path = path

    def read(self):
        try:
            with open(self._path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, parts):
        with open(self._path, "wb") as f:
            f.write(b"".join(parts))


class RegionSlot:
    """A slot that is a span of non-volatile memory (nvram.Region), written in place."""

    sized = False

    def __init__(self, region):
        self._region = region
        self.size = region.size

    def read(self):
        head = self._region.read(0, _HEAD_LEN)
        if not any(head):
            return None  # never written: formatted to zeros
        length = struct.unpack_from(_HEAD, head, 0)[2]
        return self._region.read(0, min(self.size, _HEAD_LEN + length + _TAIL_LEN))

    def write(self, parts):
        n = 0
        for part in parts:
            n += len(part)
        if n > self.size:
            raise ValueError("a record of %d bytes does not fit a slot of %d" % (n, self.size))
        self._region.write(0, parts)

    def write_at(self, at, parts):
        """Part of a record whose length the last whole write here set: within the slot."""
        self._region.write(at, parts)


class Store:
    def __init__(self, directory=None, name="state", slots=None):
        if slots is None:
            try:
                os.mkdir(directory)
            except OSError:
                pass  # it exists
            slots = (FileSlot("%s/%s.a" % (directory, name)), FileSlot("%s/%s.b" % (directory, name)))
        self._slots = slots
        self.seq = 0
        self.repaired = False
        self.lost_newer = False
        # The medium that held the records is gone (records.py): nothing loaded is a loss, not a
        # new pump.
        self.lost = False
        self._head = bytearray(_HEAD_LEN)
        self._tail = bytearray(_TAIL_LEN)
        self._parts = [self._head, b"", b"", self._tail]  # reused: no tuple per write
        self._front = [self._head, b""]
        self._back = [self._tail]
        # In place, per slot: the `more` of the last record written there whole, and where it
        # begins. A stroke's record whose `more` is that same object rewrites only the rest.
        self._kept = [None, None]
        self._kept_at = [0, 0]

    def _read(self, slot):
        """(seq, payload, kind) of a valid slot; None if it was never written; False if it is bad.
        For a bad slot, `_whole_seq` then holds the seq it had if it was written whole and went bad
        later (a failing cell), -1 when its header went bad too, or None when the write itself was
        torn short (the power went while writing it, so nothing that was to follow it happened)."""
        self._whole_seq = None
        data = slot.read()
        if data is None:
            return None
        if len(data) < _HEAD_LEN + _TAIL_LEN:
            return False
        magic, seq, length, kind = struct.unpack_from(_HEAD, data, 0)
        end = _HEAD_LEN + length
        if magic != _MAGIC:
            self._whole_seq = -1
            return False
        self._whole_seq = self._seq_if_whole(slot, data, end, seq)
        if len(data) != end + _TAIL_LEN:
            return False
        if struct.unpack_from("<I", data, end)[0] != binascii.crc32(memoryview(data)[:end]) & 0xFFFFFFFF:
            return False
        if not slot.sized and struct.unpack_from(">I", data, end + 4)[0] != seq:
            return False  # in place: the CRC holds, but the write was torn before its last bytes
        return seq, bytes(data[_HEAD_LEN:end]), kind

    @staticmethod
    def _seq_if_whole(slot, data, end, seq):
        """The seq of a record that was written whole, None for a torn write. A file keeps its
        length: a torn write is short. In place, a torn write ends in the old record's bytes, so
        it never reached its closing seq; a whole record whose header seq went bad still has it,
        and its CRC holds with that seq put back."""
        if len(data) < end + _TAIL_LEN:
            return None
        if slot.sized:
            return seq if len(data) == end + _TAIL_LEN else None
        closing = struct.unpack_from(">I", data, end + 4)[0]
        if closing == seq:
            return seq
        head = bytearray(data[:_HEAD_LEN])
        struct.pack_into("<I", head, 4, closing)
        crc = binascii.crc32(memoryview(data)[_HEAD_LEN:end], binascii.crc32(head)) & 0xFFFFFFFF
        return closing if crc == struct.unpack_from("<I", data, end)[0] else None

    def load(self):
        """The newest valid payload, or None when no slot holds one. `repaired` tells whether a
        slot was torn or corrupted; `lost_newer`, whether a stroke's record, newer than the one
        loaded, had been written whole (its stroke may have been made). A bad twin of the record
        loaded is no loss: it held the same."""
        best = None
        self.repaired = self.lost
        bad = []
        for slot in self._slots:
            record = self._read(slot)
            if record is False:
                self.repaired = True
                bad.append(self._whole_seq)
            elif record is not None and (best is None or record[0] > best[0]):
                best = record
        self.lost_newer = False
        for seq in bad:
            if seq is not None and (seq < 0 or best is None or seq > best[0]) and \
                    (best is None or best[2] != _FIRST):
                self.lost_newer = True
        if best is None:
            return None
        self.seq = best[0]
        return best[1]

    def save(self, payload, stroke=False, more=b""):
        """A stroke's accounting goes to one slot, ahead of its pulse; anything else to both. The
        payload is payload then `more`: two pieces need not be joined first."""
        if stroke:
            self._write(payload, more, _STROKE)
        else:
            self._write(payload, more, _FIRST)
            self._write(payload, more, _TWIN)

    def _write(self, payload, more, kind):
        self.seq += 1
        head, tail = self._head, self._tail
        struct.pack_into(_HEAD, head, 0, _MAGIC, self.seq, len(payload) + len(more), kind)
        crc = binascii.crc32(more, binascii.crc32(payload, binascii.crc32(head))) & 0xFFFFFFFF
        struct.pack_into("<I", tail, 0, crc)
        # Big-endian: the byte that always differs from the older record's, whose bytes a write
        # in place goes over (seq - 2: the same slot), is the very last one written.
        struct.pack_into(">I", tail, 4, self.seq)
        parts = self._parts
        parts[1], parts[2] = payload, more
        i = self.seq & 1
        slot = self._slots[i]
        if isinstance(slot, RegionSlot) and kind == _STROKE and more and self._kept[i] is more \
                and self._kept_at[i] == len(payload):
            # The same bytes change as in a whole write, in the same order: a power cut tears this
            # write exactly as it would tear the whole one.
            front = self._front
            front[1] = payload
            slot.write_at(0, front)
            slot.write_at(_HEAD_LEN + len(payload) + len(more), self._back)
        else:
            self._kept[i] = None  # until this write is whole
            slot.write(parts)
            if not slot.sized:  # a file is written whole every time
                self._kept[i], self._kept_at[i] = more, len(payload)

    def check(self):
        """How many slots hold a record that fails its CRC (a scrub: flash cells fail silently).
        A bad slot is written whole next time."""
        bad = 0
        for i in range(2):
            if self._read(self._slots[i]) is False:
                self._kept[i] = None  # what it keeps in place is not trusted
                bad += 1
        return bad
