"""Helpers of the end-to-end tests: the `pumpsim` command run against the bench's virtual board."""

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_cli(bench, *args, ok=True):
    """Run `pumpsim --dir BENCH …` as a user would; with ok, insist that it succeeds."""
    result = subprocess.run([sys.executable, "-m", "pumpsim.cli", "--dir", str(bench.dir), *args],
                            capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def mpremote(port, *args):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=60)


def mpremote_reset(bench):
    """`mpremote reset`, until the board has reset: mpremote soft-resets into the raw REPL, then
    returns at once while the board waits 100 ms, in real time, before machine.reset()."""
    boots = bench.rig.measure()["boots"]
    reset = mpremote(bench.port, "reset")
    assert reset.returncode == 0, reset.stderr
    deadline = time.monotonic() + 10
    while bench.rig.measure()["boots"] < boots + 2:
        assert time.monotonic() < deadline, "the board did not reset"
        time.sleep(0.05)


def put_files(bench, files):
    """Files onto the board's flash as a user puts them on a Pico's: `maintenance`, mpremote cp,
    `mpremote reset` back into therapy. files: {path on the board: text}."""
    with bench.client() as client:
        assert client.maintenance()["repl"] is True
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for name, text in files.items():
            local = Path(tmp) / name.replace("/", "_")
            local.write_text(text)
            args += ["fs", "cp", str(local), ":" + name, "+"]
        copied = mpremote(bench.port, *args[:-1])
        assert copied.returncode == 0, copied.stderr
    mpremote_reset(bench)


def board_file(bench, name):
    """A file's text from the board's flash, read with mpremote in maintenance; None when absent.
    Leaves the board in maintenance (`mpremote_reset` brings therapy back)."""
    with bench.client() as client:
        assert client.maintenance()["repl"] is True
    read = mpremote(bench.port, "fs", "cat", ":" + name)
    return read.stdout if read.returncode == 0 else None


class RawLine:
    """The pump's serial line with no client in between: what is written reaches the firmware as
    it is, and every reply is read back, one at a time, in order."""

    def __init__(self, bench, timeout_s=5.0):
        import serial

        self._port = serial.serial_for_url(bench.port, timeout=0.05)
        self._port.reset_input_buffer()
        self._buf = b""
        self.timeout_s = timeout_s

    def close(self):
        self._port.close()

    def write(self, data):
        self._port.write(data)

    def reply(self, timeout_s=None):
        """The next reply frame (events skipped), or None when none comes within timeout_s."""
        import time

        from pumpsim import frames

        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                frame = frames.decode(line)
                if frame.kind == "<":
                    return frame
            if time.monotonic() > deadline:
                return None
            self._buf += self._port.read(self._port.in_waiting or 1)
