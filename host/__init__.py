"""pumpsim: the clinician side of the pump (client, CLI, deploy), and its Python API:

    import pumpsim

    board = pumpsim.start("run/pump1")              # target="emu" (default), "rp2040js" or "bench"
    key = bytes.fromhex(open(board["key"]).read())
    with pumpsim.PumpClient.open(board["port"], key=key) as pump, pumpsim.Rig.open(board["rig"]) as rig:
        pump.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
        pump.program_continuous(daily_dose_ug=500)
        rig.advance(86_400_000)
        print(rig.measure()["delivered_ul"])
    pumpsim.stop("run/pump1")
"""

from importlib.metadata import version as _version

# The one place the version is written is pyproject.toml; the deployer writes it into each
# build's boardcfg, so a board reports the version that was flashed onto it.
__version__ = _version("pumpsim")

__all__ = ["PumpClient", "Rig", "start", "stop", "__version__"]


def __getattr__(name):
    # Imported when first asked for: `import pumpsim` stays light, and its modules import it.
    if name == "PumpClient":
        from pumpsim.client import PumpClient
        return PumpClient
    if name == "Rig":
        from pumpsim.hil.rig import Rig
        return Rig
    if name in ("start", "stop"):
        from pumpsim import targets
        return getattr(targets, name)
    raise AttributeError("module 'pumpsim' has no attribute %r" % name)

