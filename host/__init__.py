"""pumpsim: the clinician side of the pump (client, CLI, deploy)."""

from importlib.metadata import version as _version

# The one place the version is written is pyproject.toml; the deployer writes it into each
# build's boardcfg, so a board reports the version that was flashed onto it.
__version__ = _version("pumpsim")
