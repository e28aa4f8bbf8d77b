"""The virtual board's flash from the host: the littlefs image DIR/flash.img, read and written by
the unix port with the board's own block device (boards/emu/rom/_image.py), never by reaching
into a host folder. Only while the board is off: a running board has the image mounted.

    files = FlashFiles(DIR)
    files.read("data/events.log")  -> bytes, or None
    files.write("boot.py", b"...") ;  files.remove("data") ;  files.files() -> {path: bytes}
"""

import json
import subprocess
from pathlib import Path

import pumpsim.boards.emu

from ..process import info
from .unixport import ROM, EmuError, find_micropython

BOARD = json.loads((Path(pumpsim.boards.emu.__file__).resolve().parent / "board.json").read_text())
IMAGE = "flash.img"
# The flash's filesystem area, its erase blocks and program pages (boards/emu/rom/_flash.py).
BLOCK_BYTES = BOARD["flash"]["block_bytes"]
BLOCKS = BOARD["flash"]["bytes"] // BLOCK_BYTES


def blank(path):
    """A chip's flash as it leaves the factory: every byte erased (0xff)."""
    with open(path, "wb") as f:
        f.write(b"\xff" * (BLOCKS * BLOCK_BYTES))


class FlashFiles:
    """The files on the flash of the virtual board in `directory` (made blank when it has none)."""

    def __init__(self, directory, micropython=None):
        self.dir = Path(directory)
        self.image = self.dir / IMAGE
        self.micropython = find_micropython(micropython)

    def _run(self, *requests):
        if info(self.dir) is not None:
            raise EmuError("the board in %s is running: its flash is mounted there; stop it first "
                           "(pumpsim emu stop --dir %s), or reach its files through its port with mpremote"
                           % (self.dir, self.dir))
        if not self.image.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            blank(self.image)
        result = subprocess.run([self.micropython, str(ROM / "_image.py"), str(self.image), str(BLOCKS)],
                                input=json.dumps(requests), capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise EmuError("the flash image %s could not be read: %s"
                           % (self.image, (result.stderr or result.stdout).strip().splitlines()[-1:]))
        return json.loads(result.stdout)

    def files(self):
        """Every file on the flash: {path without the leading /: bytes}."""
        found = self._run(["files"])[0]
        return {path.lstrip("/"): bytes.fromhex(data) for path, data in sorted(found.items())}

    def read(self, path):
        data = self._run(["read", "/" + path.lstrip("/")])[0]
        return None if data is None else bytes.fromhex(data)

    def exists(self, path):
        return self.read(path) is not None

    def write(self, path, data):
        """Write a file, its folders made as needed."""
        if isinstance(data, str):
            data = data.encode()
        self._run(["write", "/" + path.lstrip("/"), data.hex()])

    def update(self, files):
        """Write many files at once: {path: bytes}."""
        self._run(*(["write", "/" + p.lstrip("/"), (d.encode() if isinstance(d, str) else d).hex()]
                    for p, d in files.items()))

    def remove(self, path):
        """Remove a file or a folder and all it holds; False when there was none."""
        return self._run(["remove", "/" + path.lstrip("/")])[0]

    def statvfs(self):
        return tuple(self._run(["df"])[0])
