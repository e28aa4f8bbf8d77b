"""After `maintenance` the pump's board is a Pico to every well-known MicroPython tool, each driven
over the port as a user runs it: mpremote's whole command set, ampy, rshell, pyboard.py and an
interactive REPL; then `mpremote reset` brings the therapy back."""

import hashlib
import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest

import pumpsim.firmware

from .helpers import mpremote_reset
from .test_maintenance import infusing_then_maintenance, tool

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

MAIN = Path(pumpsim.firmware.__file__).parent / "main.py"


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def maintained(bench):
    infusing_then_maintenance(bench)
    return bench


@pytest.fixture
def tree(tmp_path):
    """A folder to copy onto the board and back: text, binary with every byte value, a subfolder."""
    top = tmp_path / "kit"
    (top / "sub").mkdir(parents=True)
    (top / "notes.txt").write_text("line one\nline two\n")
    (top / "sub" / "blob.bin").write_bytes(bytes(range(256)) * 9)
    (top / "hello.py").write_text("import os\nprint('hello from', os.uname().sysname, len(os.listdir('/')))\n")
    return top


def test_mpremote_commands_work_as_on_a_pico(maintained, tree, tmp_path):
    bench = maintained
    port = bench.port
    mp = lambda *args: ok(tool("mpremote", port, *args))  # noqa: E731
    assert mp("exec", "print(6 * 7)").strip() == "42"
    assert mp("eval", "1 + 2").strip() == "3"
    assert re.fullmatch(r"hello from emu \d+\s*", mp("run", str(tree / "hello.py")))
    listing = mp("fs", "ls")
    sizes = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s*(\d+) (\S+)$", listing, re.M)}
    assert sizes["main.py"] == len(MAIN.read_bytes())  # deployed as it is
    assert "app.run" in mp("fs", "cat", ":main.py")
    mp("fs", "cp", "-r", str(tree), ":")
    mp("fs", "mkdir", ":kit/empty")
    remote_tree = mp("fs", "tree", "-s", ":kit")
    assert "blob.bin" in remote_tree and "2304" in remote_tree and "empty" in remote_tree, remote_tree
    digest = mp("fs", "sha256sum", ":kit/sub/blob.bin").splitlines()[-1].split()[0]
    assert digest == hashlib.sha256((tree / "sub" / "blob.bin").read_bytes()).hexdigest()
    back = tmp_path / "back"
    back.mkdir()
    mp("fs", "cp", "-r", ":kit", str(back) + "/")
    for path in ("notes.txt", "sub/blob.bin", "hello.py"):
        assert (back / "kit" / path).read_bytes() == (tree / path).read_bytes(), path
    mp("fs", "rm", "-r", ":kit")
    assert "kit" not in mp("fs", "ls")
    df = mp("df")
    total = int(re.search(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%?\s+(\S*)\s*$", df.splitlines()[1]).group(2))
    assert 1_300_000 < total <= 1408 * 1024, df
    mounted = mp("mount", str(tree), "exec", "import hello")
    assert "hello from emu" in mounted
    assert re.fullmatch(r"\(20\d\d, \d+, \d+, \d, \d+, \d+, \d+, \d+\)\s*", mp("rtc"))
    mp("soft-reset")
    assert "main.py" in mp("fs", "ls")  # still the REPL's, as on a Pico
    pulses = bench.rig.measure()["pulses"]
    mpremote_reset(bench)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == pulses + 500


def test_an_interactive_repl_answers_ctrl_c_and_ctrl_d(maintained):
    """`mpremote repl` in a terminal: a line runs, Ctrl-C stops a loop, Ctrl-D runs main.py."""
    bench = maintained
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "mpremote", "connect", bench.port, "repl"])
    try:
        def read(marker, seconds=10):
            out = b""
            deadline = time.monotonic() + seconds
            while marker not in out and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            assert marker in out, out
            return out

        read(b"Connected to MicroPython")
        os.write(fd, b"\r")
        read(b">>> ")
        os.write(fd, b"print(6 * 7)\r")
        read(b"42\r\n>>> ")
        os.write(fd, b"while True: pass\r\r")
        time.sleep(0.5)
        os.write(fd, b"\x03")
        read(b"KeyboardInterrupt")
        pulses = bench.rig.measure()["pulses"]
        os.write(fd, b"\x04")  # at the friendly prompt: soft reset into main.py
        read(b"soft reboot")
        os.write(fd, b"\x1d")  # Ctrl-]: mpremote lets go of the port
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == pulses + 500


@pytest.mark.parametrize("name", ["ampy", "rshell", "pyboard"])
def test_other_repl_tools_list_copy_and_run_as_on_a_pico(maintained, tree, tmp_path, name):
    bench = maintained
    port = bench.port
    run = lambda *args: ok(tool(name, port, *args))  # noqa: E731
    back = tmp_path / "back.txt"
    if name == "ampy":
        assert "/main.py" in run("ls").split()  # ampy names files from the root, as on a Pico
        run("put", str(tree / "notes.txt"), "notes.txt")
        assert run("get", "notes.txt").replace("\r\n", "\n").startswith("line one\nline two\n")
        assert "hello from emu" in run("run", str(tree / "hello.py"))
    elif name == "rshell":
        listing = run("ls", "-l", "/pyboard")
        assert re.search(r"^\s*[1-9]\d* .* main\.py$", listing, re.M), listing
        run("cp", str(tree / "notes.txt"), "/pyboard/notes.txt")
        run("cp", "/pyboard/notes.txt", str(back))
        assert back.read_bytes() == (tree / "notes.txt").read_bytes()
    else:
        assert "'main.py'" in run("-c", "import os; print(os.listdir())")
        assert "hello from emu" in run(str(tree / "hello.py"))
    pulses = bench.rig.measure()["pulses"]
    mpremote_reset(bench)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == pulses + 500
