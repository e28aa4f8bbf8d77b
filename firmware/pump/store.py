# Non-volatile records that survive a reset or a power cut at any instant.
#
# Two slots, written in turn: magic, seq, length, payload, CRC-32. A write torn by a power cut
# leaves a slot whose CRC fails; the other slot still holds the previous record. Loading takes the
# valid slot with the highest seq.
import os
import struct

import binascii

_MAGIC = b"PSR1"
_HEAD = "<4sIH"
_HEAD_LEN = 10


class Store:
    def __init__(self, directory, name="state"):
        self._paths = (
            "%s/%s.a" % (directory, name),
            "%s/%s.b" % (directory, name),
        )
        self.seq = 0
        self.repaired = False
        try:
            os.mkdir(directory)
        except OSError:
            pass  # it exists

    def _read(self, path):
        """(seq, payload) of a valid slot; None if it was never written; False if it is bad."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < _HEAD_LEN + 4:
            return False
        magic, seq, length = struct.unpack_from(_HEAD, data, 0)
        end = _HEAD_LEN + length
        if magic != _MAGIC or len(data) != end + 4:
            return False
        if struct.unpack_from("<I", data, end)[0] != binascii.crc32(data[:end]) & 0xFFFFFFFF:
            return False
        return seq, data[_HEAD_LEN:end]

    def load(self):
        """The newest valid payload, or None when no slot holds one; `repaired` tells whether a
        slot was torn or corrupted."""
        best = None
        self.repaired = False
        for path in self._paths:
            record = self._read(path)
            if record is False:
                self.repaired = True
            elif record is not None and (best is None or record[0] > best[0]):
                best = record
        if best is None:
            return None
        self.seq = best[0]
        return best[1]

    def save(self, payload):
        self.seq += 1
        head = struct.pack(_HEAD, _MAGIC, self.seq, len(payload))
        crc = binascii.crc32(payload, binascii.crc32(head)) & 0xFFFFFFFF
        # One write call: the whole record goes to flash in one piece, or is torn in one place.
        with open(self._paths[self.seq & 1], "wb") as f:
            f.write(head + payload + struct.pack("<I", crc))

    def check(self):
        """How many slots hold a record that fails its CRC (a scrub: flash cells fail silently)."""
        return sum(1 for path in self._paths if self._read(path) is False)
