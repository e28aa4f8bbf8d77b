# Where the records live: an SPI FRAM beside the flash, or the flash filesystem when no FRAM answers.
#
# A record rewritten before every stroke wears flash out: littlefs erases a 4 KB sector every few
# records, and a sector lasts about 100,000 erases. An FRAM (Fujitsu MB85RS1MT: 128 KB, 10^13
# writes a byte) has no erase and no page: each byte is written as it arrives on the bus, so a
# power cut leaves exactly a prefix of a write. The flash keeps the code, the key and the rare
# flags; the FRAM keeps the state records, the clock's record and the event log.
#
# The FRAM begins with a directory of its regions, written last when it is formatted, so that the
# host (and the rig of a virtual board) can find the records without knowing this file.
import os
import struct

try:
    from micropython import const
except ImportError:  # CPython, for unit tests
    def const(__x):  # positional-only (the leading __), as micropython.const is
        return __x

_WREN = const(0x06)
_WRITE = const(0x02)
_READ = const(0x03)
_RDID = const(0x9F)
_FUJITSU = const(0x04)
_CONTINUATION = const(0x7F)

MAGIC = b"PSNV"
VERSION = const(1)
_DIR_HEAD = "<4sHH"  # magic, version, regions
_DIR_ENTRY = "<4sII"  # name, offset, bytes
_DIR_HEAD_LEN = const(8)
_DIR_ENTRY_LEN = const(12)
DIR_BYTES = const(256)
# name, offset, bytes: two slots of the clock's record, two of the state record, the event log.
STATE_SLOT_BYTES = const(8192)
CLOCK_SLOT_BYTES = const(64)
LOG_BYTES = const(32768)  # EventLog: 128 slots of 256 B
LAYOUT = (
    (b"clka", 0x0100, CLOCK_SLOT_BYTES),
    (b"clkb", 0x0140, CLOCK_SLOT_BYTES),
    (b"stta", 0x0200, STATE_SLOT_BYTES),
    (b"sttb", 0x2200, STATE_SLOT_BYTES),
    (b"evts", 0x4200, LOG_BYTES),
)


class Fram:
    """An SPI FRAM of the MB85RS family: mode 0, 3-byte addresses. Takes its bus and its chip
    select, as micropython-lib's drivers do."""

    def __init__(self, spi, cs, size):
        self._spi = spi
        self._cs = cs
        self.size = size
        self._cmd = bytearray(4)
        self._one = bytearray(1)
        self._id = bytearray(4)
        cs.value(1)

    def probe(self):
        """True when a Fujitsu FRAM answers its ID: a bus with nothing on it reads 0x00 or 0xFF."""
        cs, spi = self._cs, self._spi
        self._one[0] = _RDID
        cs.value(0)
        try:
            spi.write(self._one)
            spi.readinto(self._id)
        finally:
            cs.value(1)
        return self._id[0] == _FUJITSU and self._id[1] == _CONTINUATION

    def _command(self, op, addr):
        cmd = self._cmd
        cmd[0] = op
        cmd[1] = (addr >> 16) & 0xFF
        cmd[2] = (addr >> 8) & 0xFF
        cmd[3] = addr & 0xFF
        return cmd

    def read_into(self, addr, buf):
        cs, spi = self._cs, self._spi
        cs.value(0)
        try:
            spi.write(self._command(_READ, addr))
            spi.readinto(buf)
        finally:
            cs.value(1)

    def read(self, addr, n):
        buf = bytearray(n)
        self.read_into(addr, buf)
        return buf

    def write(self, addr, parts):
        """The parts, one after the other from addr, in one bus transaction: the bytes are written
        as they arrive, so a power cut leaves a prefix of them."""
        cs, spi = self._cs, self._spi
        self._one[0] = _WREN
        cs.value(0)
        spi.write(self._one)
        cs.value(1)
        cs.value(0)
        try:
            spi.write(self._command(_WRITE, addr))
            for part in parts:
                spi.write(part)
        finally:
            cs.value(1)  # the write latch clears here


class Region:
    """A fixed span of the FRAM, addressed from 0."""

    def __init__(self, fram, offset, size):
        self._fram = fram
        self.offset = offset
        self.size = size

    def read(self, at, n):
        return self._fram.read(self.offset + at, n)

    def read_into(self, at, buf):
        self._fram.read_into(self.offset + at, buf)

    def write(self, at, parts):
        self._fram.write(self.offset + at, parts)


class FileRegion:
    """The same on the flash filesystem: one file of a fixed size, written in place. The fallback
    of a board without an FRAM, and what the unit tests on CPython use."""

    def __init__(self, path, size):
        self._path = path
        self.offset = 0
        self.size = size
        try:
            with open(path, "rb") as f:
                whole = len(f.read()) == size
        except OSError:
            whole = False
        if not whole:
            with open(path, "wb") as f:
                f.write(bytes(size))

    def read(self, at, n):
        with open(self._path, "rb") as f:
            f.seek(at)
            return f.read(n)

    def read_into(self, at, buf):
        data = self.read(at, len(buf))
        buf[: len(data)] = data

    def write(self, at, parts):
        with open(self._path, "r+b") as f:
            f.seek(at)
            # One write call: on flash the whole span goes in one piece, or is torn in one place.
            f.write(parts[0] if len(parts) == 1 else b"".join(parts))


def directory(fram):
    """{name: (offset, bytes)} from the FRAM's directory; None when it was never formatted."""
    head = fram.read(0, _DIR_HEAD_LEN)
    magic, version, count = struct.unpack(_DIR_HEAD, head)
    if magic != MAGIC or version != VERSION or count * _DIR_ENTRY_LEN + _DIR_HEAD_LEN > DIR_BYTES:
        return None
    entries = fram.read(_DIR_HEAD_LEN, count * _DIR_ENTRY_LEN)
    found = {}
    for i in range(count):
        name, offset, size = struct.unpack_from(_DIR_ENTRY, entries, i * _DIR_ENTRY_LEN)
        found[name] = (offset, size)
    return found


def _expected():
    return dict((name, (offset, size)) for name, offset, size in LAYOUT)


def format_(fram):
    """Zero every region, then write the directory: a power cut before the end leaves an FRAM
    that reads as never formatted, and the next boot formats it again."""
    zeros = bytes(256)
    for _, offset, size in LAYOUT:
        for at in range(0, size, len(zeros)):
            fram.write(offset + at, (zeros[: min(len(zeros), size - at)],))
    head = bytearray(DIR_BYTES)
    struct.pack_into(_DIR_HEAD, head, 0, MAGIC, VERSION, len(LAYOUT))
    for i, (name, offset, size) in enumerate(LAYOUT):
        struct.pack_into(_DIR_ENTRY, head, _DIR_HEAD_LEN + i * _DIR_ENTRY_LEN, name, offset, size)
    fram.write(0, (head,))


def regions(fram):
    """{name: Region} of a formatted FRAM, formatting it first when it was not (or held another
    layout). True as the second value when it was formatted now: it held no records."""
    formatted = False
    if directory(fram) != _expected():
        format_(fram)
        formatted = True
    return dict((name, Region(fram, offset, size)) for name, offset, size in LAYOUT), formatted


def file_regions(directory_path):
    """The same regions as files in a folder of the flash filesystem."""
    try:
        os.mkdir(directory_path)
    except OSError:
        pass  # it exists
    return dict((name, FileRegion("%s/%s.nv" % (directory_path, name.decode()), size))
                for name, _, size in LAYOUT)
