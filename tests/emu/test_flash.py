"""The virtual board's filesystem is its flash, as a Pico's: a littlefs image of the Pico's size
mounted at "/", nothing of the host reachable, real sizes, ENOSPC when full, erases counted,
programs torn at page boundaries by a power cut, and the host reaching the image only while the
board is off."""

import json
import re
import subprocess
from pathlib import Path

import pytest

import pumpsim.boards.emu
from pumpsim.targets.emu import confine, supervisor
from pumpsim.targets.emu.flashfs import BLOCK_BYTES, BLOCKS, IMAGE, FlashFiles, blank
from pumpsim.targets.emu.unixport import ROM, EmuError, find_micropython

from .conftest import TOY_MAIN, mpremote, read_for

BOARD = json.loads((Path(pumpsim.boards.emu.__file__).parent / "board.json").read_text())


@pytest.fixture
def repl(toy_board, line):
    """The toy board's REPL, its application ended."""
    info, rig = toy_board
    line.write(b"q")
    read_for(line, 0.3)
    line.close()
    return info, rig


def board_exec(info, code):
    ran = mpremote(info["port"], "exec", code)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_the_flash_is_a_picos_filesystem_area():
    flash = BOARD["flash"]
    assert BLOCKS * BLOCK_BYTES == flash["bytes"] == 1408 * 1024
    source = (ROM / "_flash.py").read_text()
    assert "_BLOCK = const(%d)" % flash["block_bytes"] in source
    assert "_PAGE = const(%d)" % flash["page_bytes"] in source


def test_the_board_sees_its_flash_and_nothing_of_the_host(repl):
    info, _ = repl
    out = board_exec(info, "\n".join([
        "import os, sys",
        "print(os.getcwd(), sorted(os.listdir('/')), sys.path)",
        "print(os.statvfs('/')[:3], os.stat('main.py')[6])",
        "for path in ('/etc/passwd', '/proc/self/status', '../../etc/passwd', '/tmp'):",
        "    try:",
        "        os.stat(path)",
        "        print('reached', path)",
        "    except OSError as e:",
        "        print('refused', e.errno)",
    ]))
    lines = out.splitlines()
    assert lines[0] == "/ ['main.py'] ['', '.frozen', '/lib']", out
    assert lines[1] == "(4096, 4096, 352) %d" % len(TOY_MAIN.encode()), out
    # ENOENT, and EINVAL for a path above the root, as littlefs on a Pico answers.
    assert lines[2:] == ["refused 2", "refused 2", "refused 22", "refused 2"], out
    # mpremote reads the same: sizes and the free space of a 1.4 MB flash.
    listing = mpremote(info["port"], "fs", "ls")
    assert re.search(r"^\s*%d main\.py$" % len(TOY_MAIN.encode()), listing.stdout, re.M), listing.stdout
    df = mpremote(info["port"], "df").stdout
    assert re.search(r"^<VfsLfs2>\s+1441792\s+\d+\s+\d+\s+\d+\s+/$", df, re.M), df


def test_a_full_flash_fails_a_write_with_enospc_and_keeps_what_it_held(repl):
    info, _ = repl
    out = board_exec(info, "\n".join([
        "import os",
        "free = os.statvfs('/')[0] * os.statvfs('/')[4]",
        "chunk = bytes(range(256)) * 16",
        "def fill(name, size):",
        "    try:",
        "        with open(name, 'wb') as f:",
        "            for _ in range(size // 4096):",
        "                f.write(chunk)",
        "        return 'ok'",
        "    except OSError as e:",
        "        return e.errno",
        # Two blocks under what is free fits; one block past it cannot.
        "print(free, fill('fits.bin', free - 2 * 4096), os.stat('fits.bin')[6])",
        "os.remove('fits.bin')",
        "print(fill('big.bin', free + 4096))",
        "print(open('main.py').read() == %r)" % TOY_MAIN,
        "os.remove('big.bin')",
        "print(os.statvfs('/')[0] * os.statvfs('/')[4] == free)",
    ]))
    first, full, kept, freed = out.splitlines()
    free, fitted, size = first.split()
    assert 1_300_000 < int(free) < 1441792 and fitted == "ok" and int(size) == int(free) - 2 * 4096, out
    assert full == "28", out  # ENOSPC
    assert kept == "True" and freed == "True", out


def test_every_erase_is_counted_by_the_rig(repl):
    info, rig = repl
    before = rig.measure()["flash_erases"]
    board_exec(info, "with open('ten.bin', 'wb') as f:\n    f.write(bytes(10 * 4096))")
    written = rig.measure()["flash_erases"] - before
    # littlefs erases a block before it programs it: ten blocks of data, its metadata beside them.
    assert 10 <= written <= 14, written
    board_exec(info, "import os\nos.remove('ten.bin')")
    assert rig.measure()["flash_erases"] - before - written <= 2  # a removal writes metadata only


TEAR = r"""
import sys
sys.path.insert(0, %(rom)r)
import _flash

class Wire:
    armed = True
    NV_WRITE = 87
    POWER_LOST = 75
    SLEEP = 83
    FLASH_ERASE = 69
    def __init__(self, allowed):
        self.allowed = allowed
        self.sent = []
    def call(self, kind, arg):
        if kind == self.SLEEP:
            raise SystemExit(0)  # the power is gone
        return (86, self.allowed)
    def send(self, kind, arg):
        self.sent.append(kind)
    def send_now(self, kind, arg):
        self.sent.append(kind)

wire = Wire(%(allowed)d)
flash = _flash.Flash(%(image)r, 352, wire)
try:
    flash.writeblocks(3, bytes(range(256)) * 4, 0)
finally:
    print(wire.sent)
"""


@pytest.mark.parametrize("allowed, reached", [(0, 0), (255, 0), (256, 256), (511, 256), (700, 512),
                                              (1023, 768), (-1, 1024)])
def test_a_power_cut_tears_a_program_at_its_page_boundaries(tmp_path, allowed, reached):
    image = tmp_path / IMAGE
    blank(image)
    run = subprocess.run([find_micropython(), "-c", TEAR % {"rom": str(ROM), "allowed": allowed, "image": str(image)}],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ("[]" if allowed < 0 else "[75]")  # K: the power went, when it did
    data = image.read_bytes()
    block = data[3 * 4096 : 4 * 4096]
    assert block[:reached] == (bytes(range(256)) * 4)[:reached]
    assert block[reached:] == b"\xff" * (4096 - reached)
    assert set(data[: 3 * 4096] + data[4 * 4096 :]) == {0xFF}  # nothing else written


def test_the_host_reaches_the_image_only_while_the_board_is_off(tmp_path):
    directory = tmp_path / "board"
    files = FlashFiles(directory)
    assert files.files() == {}  # a blank chip: the first look makes its filesystem
    files.update({"main.py": TOY_MAIN, "lib/tool.py": "X = 1\n", "data/blob.bin": bytes(range(256))})
    assert files.read("lib/tool.py") == b"X = 1\n" and files.read("missing.py") is None
    info = supervisor.start(directory)
    try:
        with pytest.raises(EmuError, match="running"):
            files.read("main.py")
    finally:
        supervisor.stop(directory)
    assert files.remove("data") is True and files.remove("data") is False
    assert sorted(files.files()) == ["lib/tool.py", "main.py"]
    assert info["port"].endswith("ttyACM0")


def test_the_kernel_keeps_the_board_to_its_own_files(repl, tmp_path):
    """Not even code that reaches past the board's VFS (os.system, a VfsPosix mounted by hand, a
    socket to the rig) touches the host: the unix port runs under Landlock (confine.py)."""
    if not confine.available():
        pytest.skip("this kernel has no Landlock: the board is kept to its flash by its VFS alone")
    info, _ = repl
    secret = tmp_path / "secret.txt"
    secret.write_text("host data")
    rig_port = int(info["rig"].rsplit(":", 1)[1])
    out = board_exec(info, "\n".join([
        "import os, socket, vfs",
        "print('system', os.system('echo x > %s'))" % (tmp_path / "made-by-board"),
        "vfs.mount(vfs.VfsPosix('/'), '/host')",
        "def attempt(what, action):",
        "    try:",
        "        action()",
        "        print(what, 'done')",
        "    except OSError as e:",
        "        print(what, e.errno)",
        "attempt('read', lambda: open('/host%s').read())" % secret,
        "attempt('write', lambda: open('/host%s', 'w').write('x'))" % (tmp_path / "written-by-board"),
        "attempt('list', lambda: os.listdir('/host%s'))" % tmp_path,
        "s = socket.socket()",
        "attempt('connect', lambda: s.connect(socket.getaddrinfo('127.0.0.1', %d)[0][-1]))" % rig_port,
    ]))
    lines = out.splitlines()
    assert lines[0] != "system 0", out
    assert lines[1:] == ["read 13", "write 13", "list 13", "connect 13"], out  # EACCES, each
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board", "secret.txt"]
    assert secret.read_text() == "host data"
