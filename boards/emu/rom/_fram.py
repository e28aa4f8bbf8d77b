# The virtual board's FRAM: an MB85RS1MT on SPI, as its datasheet describes it at the level of
# bus transactions (WREN, WRITE, READ, RDSR, WRDI, RDID). The file is the memory: the rig can
# flip its bits (a failing cell) and the board sees them at its next read. While the rig has a
# power cut armed, a write asks it first how many of its bytes reach the memory.
import os

import _wire

_WRSR = 0x01
_WRITE = 0x02
_READ = 0x03
_WRDI = 0x04
_RDSR = 0x05
_WREN = 0x06
_RDID = 0x9F
_ID = b"\x04\x7f\x27\x03"  # Fujitsu, continuation, MB85RS1MT
_WEL = 0x02


class Fram:
    def __init__(self, path, size):
        self.size = size
        try:
            self._f = open(path, "r+b")
        except OSError:
            with open(path, "wb") as f:
                f.write(bytes(size))
            self._f = open(path, "r+b")
        self._wel = False
        self._selected = False
        self._txn = bytearray()
        self._out = 0  # bytes clocked out to the host in this transaction

    def select(self, low):
        if low:
            self._selected = True
            self._txn = bytearray()
            self._out = 0
        elif self._selected:
            self._selected = False
            self._end()

    def _addr(self):
        txn = self._txn
        return ((txn[1] << 16) | (txn[2] << 8) | txn[3]) % self.size

    def clock_in(self, data):
        """Bytes from the host (MOSI)."""
        if self._selected:
            self._txn.extend(data)

    def clock_out(self, buf):
        """Bytes to the host (MISO) while it sends filler."""
        n = len(buf)
        txn = self._txn
        op = txn[0] if self._selected and txn else None
        if op == _READ and len(txn) >= 4:
            self._read(self._addr() + self._out, buf)
        elif op == _RDID:
            for i in range(n):
                j = self._out + i
                buf[i] = _ID[j] if j < len(_ID) else 0
        elif op == _RDSR:
            for i in range(n):
                buf[i] = _WEL if self._wel else 0
        else:
            for i in range(n):
                buf[i] = 0
        self._out += n

    def _read(self, addr, buf):
        n, size, f = len(buf), self.size, self._f
        done = 0
        while done < n:
            at = (addr + done) % size
            take = min(n - done, size - at)
            f.seek(at)
            buf[done : done + take] = f.read(take)
            done += take

    def _end(self):
        txn = self._txn
        if not txn:
            return
        op = txn[0]
        if op == _WREN:
            self._wel = True
        elif op == _WRDI:
            self._wel = False
        elif op in (_WRITE, _WRSR):
            if op == _WRITE and self._wel and len(txn) > 4:
                self._write(self._addr(), memoryview(txn)[4:])
            self._wel = False

    def _write(self, addr, data):
        n = len(data)
        if _wire.armed:
            allowed = _wire.call(_wire.NV_WRITE, n)[1]
            if 0 <= allowed < n:
                self._put(addr, data[:allowed])
                _wire.send_now(_wire.POWER_LOST, 0)
                while True:  # the supervisor ends this process: the power is gone
                    _wire.call(_wire.SLEEP, -1)
        self._put(addr, data)

    def _put(self, addr, data):
        size, f = self.size, self._f
        done = 0
        while done < len(data):
            at = (addr + done) % size
            take = min(len(data) - done, size - at)
            f.seek(at)
            f.write(data[done : done + take])
            done += take


def attached():
    """(cs pin, Fram) of the board's FRAM, from the supervisor; None on a board without one."""
    path = os.getenv("PUMPSIM_FRAM")
    if not path:
        return None
    return int(os.getenv("PUMPSIM_FRAM_CS") or "-1"), Fram(path, int(os.getenv("PUMPSIM_FRAM_BYTES") or "0"))
