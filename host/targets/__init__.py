"""What starts a board: the emu target (the MicroPython unix port in a virtual board), rp2040js
(official MicroPython on an emulated RP2040) and bench (two emulated Picos, the DUT and the rig
Pico). `start` is what `pumpsim emu start` runs; `stop` ends any of them."""

from __future__ import annotations

from pathlib import Path

TARGETS = ("emu", "rp2040js", "bench")


def start(directory: str | Path, target: str = "emu", *, micropython: str | None = None,
          firmware: str | None = None, clock: str | None = None, reset_causes: str = "all") -> dict:
    """Boot a board of `target` in `directory`, in the background, and return what its emu.json
    holds: `port` (its serial port), `rig` (its rig's URL), `key` (the key's file), `dir`, `pid`
    (and `observer` on the bench). A folder that holds no firmware yet gets a new key and the
    firmware, over the board's port with mpremote, as a new board would."""
    from pumpsim.errors import UsageError

    if target not in TARGETS:
        raise UsageError("target %r: one of %s" % (target, ", ".join(TARGETS)))
    directory = Path(directory)
    if target == "emu":
        if firmware:
            raise UsageError("emu start: --firmware is for --target rp2040js (the emu target runs the unix port)")
        return _start_emu(directory, micropython, clock or "stepped", reset_causes)
    if micropython:
        raise UsageError("emu start: --micropython is for the emu target; %s runs --firmware UF2" % target)
    if clock not in (None, "realtime"):
        raise UsageError("emu start: the %s target's clock runs in real time, not %s" % (target, clock))
    return _start_pico(directory, target, firmware)


def stop(directory: str | Path) -> bool:
    """Stop the board running in `directory`, whatever its target; False when none was."""
    from .process import stop as stop_process

    return stop_process(directory)


def _start_emu(directory, micropython, clock, reset_causes):
    from pumpsim import deploy
    from pumpsim.errors import PumpsimError

    from .emu import supervisor
    from .emu.flashfs import FlashFiles

    try:
        deployed = supervisor.info(directory) is not None or FlashFiles(directory, micropython).exists("main.py")
        info = supervisor.start(directory, micropython=micropython, clock=clock, reset_causes=reset_causes)
    except (supervisor.EmuError, ValueError) as exc:
        raise PumpsimError(str(exc)) from None
    try:
        if not deployed:
            key = deploy.new_key()
            (directory / "host.key").write_text(key.hex() + "\n")
            deploy.provision_key(info["port"], key)
            deploy.deploy(info["port"], "emu")
    except PumpsimError:
        supervisor.stop(directory)
        raise
    return info


def _start_pico(directory, target, firmware):
    """An emulated Pico running official MicroPython, or the bench of two (the DUT and the rig
    Pico): blank until deployed, like a new Pico, so a first start deploys the firmware over its
    port exactly as `make flash BOARD=rpi_pico` does (and the bench's rig Pico is given
    boards/rig_pico the same way, before it is wired in)."""
    from pumpsim import deploy
    from pumpsim.errors import PumpsimError

    from .emu import supervisor
    from .rp2040js import bench
    from .rp2040js import supervisor as rp2040js

    if target == "bench":
        if supervisor.info(directory) is None and not (directory / bench.RIG_DIR / "flash.bin").exists():
            bench.make_rig_image(directory / bench.RIG_DIR, firmware=firmware)
        info = bench.start(directory, firmware=firmware)
    else:
        info = rp2040js.start(directory, firmware=firmware)
    key_file = directory / "host.key"
    try:
        if not key_file.exists():
            key = deploy.new_key()
            # The key goes in before main.py: once main.py runs, the pump holds the serial line.
            deploy.provision_key(info["port"], key)
            deploy.deploy(info["port"], "rpi_pico")
            key_file.write_text(key.hex() + "\n")
    except PumpsimError:
        supervisor.stop(directory)
        raise
    return info
