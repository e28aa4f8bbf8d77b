"""Helpers of the end-to-end tests: the `pumpsim` command run against the bench's virtual board."""

import subprocess
import sys


def run_cli(bench, *args, ok=True):
    """Run `pumpsim --dir BENCH …` as a user would; with ok, insist that it succeeds."""
    result = subprocess.run([sys.executable, "-m", "pumpsim.cli", "--dir", str(bench.dir), *args],
                            capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result
