# The event log: a persisted ring of timestamped, typed events.
#
# Fixed slots of one region (an FRAM span, or a file on flash), each with its own CRC: a write
# torn by a power cut spoils only the slot being written (the oldest entry, about to be replaced),
# never the rest of the log.
import json
import struct

import binascii

from pump.nvram import FileRegion

try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(__x):  # positional-only (the leading __), as micropython.const is
        return __x

SLOT_BYTES = const(256)
SLOTS = const(128)
_HEAD = "<IqH"
_HEAD_LEN = const(14)
_ROOM = const(238)  # SLOT_BYTES - _HEAD_LEN - 4 (CRC)
_CHUNK_SLOTS = const(16)  # read 4 KB at a time: never the whole log in RAM at once


class EventLog:
    def __init__(self, directory=None, slots=SLOTS, region=None):
        self._slots = slots
        if region is None:
            region = FileRegion("%s/events.log" % directory, slots * SLOT_BYTES)
        elif region.size < slots * SLOT_BYTES:
            raise ValueError("the log needs %d bytes, not %d" % (slots * SLOT_BYTES, region.size))
        self._region = region
        self.seq = 0
        self.bad_slots = 0
        self.newest_ms = None  # the latest time an entry holds: pump time never goes back before it
        for seq, t_ms, _ in self._entries():
            self.seq = max(self.seq, seq)
            if self.newest_ms is None or t_ms > self.newest_ms:
                self.newest_ms = t_ms

    def _entries(self):
        self.bad_slots = 0
        found = []
        data = b""
        for i in range(self._slots):
            if i % _CHUNK_SLOTS == 0:
                data = self._region.read(i * SLOT_BYTES, min(_CHUNK_SLOTS, self._slots - i) * SLOT_BYTES)
            off = (i % _CHUNK_SLOTS) * SLOT_BYTES
            seq, t_ms, length = struct.unpack_from(_HEAD, data, off)
            if seq == 0:
                continue  # never written
            end = off + _HEAD_LEN + length
            if length > _ROOM or struct.unpack_from("<I", data, off + SLOT_BYTES - 4)[0] != (
                binascii.crc32(data[off:end]) & 0xFFFFFFFF
            ):
                self.bad_slots += 1
                continue
            found.append((seq, t_ms, bytes(data[off + _HEAD_LEN : end])))
        return found

    def append(self, t_ms, event, fields=None):
        record = {"event": event}
        if fields:
            record.update(fields)
        text = json.dumps(record).encode()
        if len(text) > _ROOM:
            text = json.dumps({"event": event, "truncated": True}).encode()
        self.seq += 1
        if self.newest_ms is None or t_ms > self.newest_ms:
            self.newest_ms = t_ms
        slot = bytearray(SLOT_BYTES)  # an entry is rare: a fresh buffer, zeroed
        struct.pack_into(_HEAD, slot, 0, self.seq, t_ms, len(text))
        slot[_HEAD_LEN : _HEAD_LEN + len(text)] = text
        struct.pack_into("<I", slot, SLOT_BYTES - 4,
                         binascii.crc32(memoryview(slot)[: _HEAD_LEN + len(text)]) & 0xFFFFFFFF)
        self._region.write(((self.seq - 1) % self._slots) * SLOT_BYTES, (slot,))

    def read(self, since_seq=0):
        """The events after since_seq, oldest first, each a dict with seq, t_s and event."""
        events = []
        for seq, t_ms, text in sorted(self._entries()):
            if seq > since_seq:
                record = json.loads(text)
                record["seq"] = seq
                record["t_s"] = t_ms // 1000
                record["t_ms"] = t_ms
                events.append(record)
        return events
