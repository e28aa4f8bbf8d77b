"""A target's supervisor as a background process: started from its module, found through
DIR/emu.json (which it writes once its board is up), and stopped. Shared by every target."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PORT_LINK = "ttyACM0"  # DIR/ttyACM0: the board's serial port, a link to its pty


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


def serve_in_background(sup, announce, ready=None):
    """The supervisor's own process: SIGTERM or SIGINT ends sup.serve() at once (a wake-up socket
    ends its select), emu.json announces the board (`announce` plus what every target gives) once
    it is up (`ready()`, when given, says whether it came up), and is removed when it stops."""
    import logging
    import selectors
    import socket

    def on_term(signum, frame):
        sup.running = False

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    sup.sel.register(wake_r, selectors.EVENT_READ, lambda mask: wake_r.recv(64))
    if ready is not None and not ready():
        sup.shutdown()
        return 1
    # The port is a stable path in the board's folder, as a Pico's /dev/ttyACM0 is: tools that
    # take any /dev/pts/* port for an emulator's (mpremote, pyboard.py) would wait on it for
    # ever. The pty itself stays at hand as `pty`.
    link = sup.dir / PORT_LINK
    tmp_link = sup.dir / (PORT_LINK + ".tmp")
    tmp_link.unlink(missing_ok=True)
    os.symlink(sup.port, tmp_link)
    os.replace(tmp_link, link)
    emu_json = {"port": str(link), "pty": sup.port, "rig": "socket://127.0.0.1:%d" % sup.rig.port,
                "pid": os.getpid(), "dir": str(sup.dir), "key": str(sup.dir / "host.key"), **announce}
    tmp = sup.dir / "emu.json.tmp"
    tmp.write_text(json.dumps(emu_json))
    try:
        os.replace(tmp, sup.dir / "emu.json")
        sup.serve()
    finally:
        sup.shutdown()
        (sup.dir / "emu.json").unlink(missing_ok=True)
        link.unlink(missing_ok=True)
        logging.getLogger("pumpsim.emu").info("stopped")
    return 0
