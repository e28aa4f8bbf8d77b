# Non-volatile records that survive a reset or a power cut at any instant.
#
# Two slots, written in turn: magic, seq, length, payload, CRC-32. A write torn by a power cut
# leaves a slot whose CRC fails; the other slot still holds the previous record. Loading takes the
# valid slot with the highest seq.
import os
import struct

import binascii

_MAGIC = b"PSR2"
_HEAD = "<4sIHB"
_HEAD_LEN = 11
# What a record is: the accounting of a stroke about to be made, written to one slot; or a change
# of settings or state, written to both slots in turn (the first, then its twin), so that either
# copy alone holds it.
_STROKE = 0
_FIRST = 1
_TWIN = 2


class Store:
    def __init__(self, directory, name="state"):
        self._paths = (
            "%s/%s.a" % (directory, name),
            "%s/%s.b" % (directory, name),
        )
        self.seq = 0
        self.repaired = False
        self.lost_newer = False
        try:
            os.mkdir(directory)
        except OSError:
            pass  # it exists

    def _read(self, path):
        """(seq, payload, kind) of a valid slot; None if it was never written; False if it is bad.
        For a bad slot, `_whole_seq` then holds the seq it had if it was written whole and went bad
        later (a failing cell), -1 when its header went bad too, or None when the write itself was
        torn short (the power went while writing it, so nothing that was to follow it happened)."""
        self._whole_seq = None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < _HEAD_LEN + 4:
            return False
        magic, seq, length, kind = struct.unpack_from(_HEAD, data, 0)
        end = _HEAD_LEN + length
        if magic != _MAGIC:
            self._whole_seq = -1
            return False
        # A torn write is a prefix of the record it was to be: shorter than its header says.
        if len(data) >= end + 4:
            self._whole_seq = seq
        if len(data) != end + 4:
            return False
        if struct.unpack_from("<I", data, end)[0] != binascii.crc32(data[:end]) & 0xFFFFFFFF:
            return False
        return seq, data[_HEAD_LEN:end], kind

    def load(self):
        """The newest valid payload, or None when no slot holds one. `repaired` tells whether a
        slot was torn or corrupted; `lost_newer`, whether a stroke's record, newer than the one
        loaded, had been written whole (its stroke may have been made). A bad twin of the record
        loaded is no loss: it held the same."""
        best = None
        self.repaired = False
        bad = []
        for path in self._paths:
            record = self._read(path)
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

    def save(self, payload, stroke=False):
        """A stroke's accounting goes to one slot, ahead of its pulse; anything else to both."""
        if stroke:
            self._write(payload, _STROKE)
        else:
            self._write(payload, _FIRST)
            self._write(payload, _TWIN)

    def _write(self, payload, kind):
        self.seq += 1
        head = struct.pack(_HEAD, _MAGIC, self.seq, len(payload), kind)
        crc = binascii.crc32(payload, binascii.crc32(head)) & 0xFFFFFFFF
        # One write call: the whole record goes to flash in one piece, or is torn in one place.
        with open(self._paths[self.seq & 1], "wb") as f:
            f.write(head + payload + struct.pack("<I", crc))

    def check(self):
        """How many slots hold a record that fails its CRC (a scrub: flash cells fail silently)."""
        return sum(1 for path in self._paths if self._read(path) is False)
