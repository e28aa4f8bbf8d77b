"""A target's supervisor as a background process: started from its module, found through
DIR/emu.json (which it writes once its board is up), and stopped. Shared by every target."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def pid_alive(pid):
    try:
        # Reap it if it is our own child (the process that started it is still running).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def info(directory):
    """What emu.json says of the board running in DIR, or None when none runs."""
    path = Path(directory) / "emu.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if pid_alive(data.get("pid", -1)) else None


def launch(directory, module, args, what, error, timeout_s):
    """Run `python -m module --dir DIR args…` in the background, its output in DIR/emu.log, and
    wait until it has written emu.json; `error(text)` is raised, naming `what`, when it does not."""
    directory = Path(directory)
    (directory / "emu.json").unlink(missing_ok=True)
    logfile = open(directory / "emu.log", "ab")
    cmd = [sys.executable, "-m", module, "--dir", str(directory), *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                            start_new_session=True)
    logfile.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = info(directory)
        if data and data.get("pid") == proc.pid:
            return data
        if proc.poll() is not None:
            tail = (directory / "emu.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise error("%s did not start: %s" % (what, " / ".join(tail)))
        time.sleep(0.02)
    proc.kill()
    raise error("%s did not start within %.0f s" % (what, timeout_s))


def stop(directory, timeout_s=5.0):
    """Stop the board in DIR, whatever its target; False when none was running."""
    data = info(directory)
    if data is None:
        (Path(directory) / "emu.json").unlink(missing_ok=True)
        return False
    pid = data["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (Path(directory) / "emu.json").unlink(missing_ok=True)
    return True
