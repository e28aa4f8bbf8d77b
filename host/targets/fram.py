"""The board's FRAM image as the rig sees it: its directory of regions (written by the firmware
when it formats the chip, firmware/pump/nvram.py), the records in them, and bit flips of the kind
a failing cell makes. The rig finds everything from the image itself, never from firmware code.
"""

import struct

_DIR = struct.Struct("<4sHH")  # magic, version, regions
_ENTRY = struct.Struct("<4sII")  # name, offset, bytes
_RECORD = struct.Struct("<4sIHB")  # magic, seq, length, kind
_RECORD_TAIL = 8  # CRC-32, closing seq
_LOG_SLOT = 256
_LOG_HEAD = struct.Struct("<IqH")  # seq, t_ms, length

TARGETS = ("state", "both", "log")


class FramError(ValueError):
    pass


def regions(image):
    """{name: (offset, bytes)} of a formatted image; empty when the firmware never formatted it."""
    if len(image) < _DIR.size:
        return {}
    magic, _version, count = _DIR.unpack_from(image, 0)
    if magic != b"PSNV":
        return {}
    found = {}
    for i in range(count):
        name, offset, size = _ENTRY.unpack_from(image, _DIR.size + i * _ENTRY.size)
        found[name.decode("ascii", "replace")] = (offset, size)
    return found


def record(image, span):
    """(seq, bytes the record takes) of the record at span (offset, bytes); None if none."""
    offset, size = span
    magic, seq, length, _kind = _RECORD.unpack_from(image, offset)
    if magic != b"PSR3":
        return None
    return seq, min(size, _RECORD.size + length + _RECORD_TAIL)


def _spans(image, target):
    """(name, offset, bytes) of what a target's corruption hits: the newest state copy, both, or
    the event log's written slots."""
    found = regions(image)
    if not found:
        raise FramError("the FRAM holds no records yet: the firmware formats it at its first boot")
    if target == "log":
        offset, size = found["evts"]
        written = [offset + i for i in range(0, size, _LOG_SLOT) if _LOG_HEAD.unpack_from(image, offset + i)[0]]
        return [("evts", s, _LOG_SLOT) for s in written]
    copies = []
    for name in ("stta", "sttb"):
        rec = record(image, found[name])
        if rec is not None:
            copies.append((rec[0], name, found[name][0], rec[1]))
    copies.sort()
    if target == "state":
        copies = copies[-1:]
    return [(name, offset, size) for _, name, offset, size in copies]


def flips(image, target, rng, per_record=4):
    """(regions hit, [(offset, bit), ...]): random bits to flip in each record `target` names."""
    if target not in TARGETS:
        raise ValueError("corrupt-flash takes %s, not %r" % (", ".join(TARGETS), target))
    spans = _spans(image, target)
    if not spans:
        raise FramError("no %s record on the FRAM to corrupt" % target)
    if target == "log":
        spans = [rng.choice(spans)]
    chosen = [(offset + rng.randrange(size), rng.randrange(8)) for _, offset, size in spans
              for _ in range(per_record)]
    return sorted({"fram:%s" % name for name, _, _ in spans}), chosen


def corrupt(image, target, rng):
    """Flip random bits in each record `target` names, in place; the regions hit."""
    hit, chosen = flips(image, target, rng)
    for offset, bit in chosen:
        image[offset] ^= 1 << bit
    return hit
