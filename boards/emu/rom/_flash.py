# The virtual board's flash: the Pico's filesystem area (352 blocks of 4 KB, programmed in 256 B
# pages) as a littlefs image in the board folder, DIR/flash.img, mounted at "/" as a Pico's
# _boot.py mounts rp2.Flash(). Nothing of the host stays reachable once it is mounted.
#
# The image file is the memory, read and written in place: a read cache of whole blocks, every
# program and erase written through, so that a power cut (the supervisor ending this process)
# leaves the image exactly as far as the writes got. While the rig has a power cut armed, a
# program asks it first how many of its bytes reach the flash, and only whole pages do.
import os
import vfs

_BLOCK = const(4096)
_PAGE = const(256)
_CACHED = const(16)  # blocks
_ERASED = b"\xff" * _BLOCK


class Flash:
    """The block device (the extended interface: offsets within a block, erase by ioctl)."""

    def __init__(self, path, blocks, wire=None):
        self.blocks = blocks
        self._wire = wire  # the rig's wires (_wire); None when the image is opened off the board
        self._f = open(path, "r+b")
        self._cache = {}  # block -> bytearray(_BLOCK), the newest last

    def _block(self, block):
        cache = self._cache
        data = cache.pop(block, None)
        if data is None:
            data = bytearray(_BLOCK)
            self._f.seek(block * _BLOCK)
            self._f.readinto(data)
            if len(cache) >= _CACHED:
                del cache[next(iter(cache))]
        cache[block] = data
        return data

    def readblocks(self, block, buf, offset=0):
        n = len(buf)
        if offset + n <= _BLOCK:
            buf[:] = memoryview(self._block(block))[offset : offset + n]
            return
        view = memoryview(buf)
        done = 0
        while done < n:  # a read across blocks
            take = min(n - done, _BLOCK - offset)
            view[done : done + take] = memoryview(self._block(block))[offset : offset + take]
            done += take
            block, offset = block + 1, 0

    def writeblocks(self, block, buf, offset=None):
        if offset is None:  # the simple interface: erase, then program the whole block
            self.ioctl(6, block)
            offset = 0
        n = len(buf)
        wire = self._wire
        if wire is not None and wire.armed:
            allowed = wire.call(wire.NV_WRITE, n)[1]
            if 0 <= allowed < n:
                self._program(block, memoryview(buf)[: allowed - allowed % _PAGE], offset)
                wire.send_now(wire.POWER_LOST, 0)
                while True:  # the supervisor ends this process: the power is gone
                    wire.call(wire.SLEEP, -1)
        self._program(block, buf, offset)

    def _program(self, block, buf, offset):
        if not len(buf):
            return
        self._f.seek(block * _BLOCK + offset)
        self._f.write(buf)
        self._f.flush()
        data = self._cache.get(block)
        if data is not None:
            data[offset : offset + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return _BLOCK
        if op == 6:  # erase a block
            if self._wire is not None:
                self._wire.send(self._wire.FLASH_ERASE, arg)
            self._program(arg, _ERASED, 0)
            return 0
        return 0 if op in (1, 2, 3) else None


def filesystem(bdev):
    """The littlefs on bdev, made first when it holds none (a blank or wiped chip), as a Pico's
    _boot.py does."""
    try:
        return vfs.VfsLfs2(bdev, progsize=_PAGE)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev, progsize=_PAGE)
        return vfs.VfsLfs2(bdev, progsize=_PAGE)


def mount(path, blocks, wire):
    """The flash at "/", in place of the host's filesystem, and "/" the working directory."""
    fs = filesystem(Flash(path, blocks, wire))
    vfs.umount("/")
    vfs.mount(fs, "/")
    os.chdir("/")
