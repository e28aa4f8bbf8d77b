"""Maintenance hands the line to mpremote; a soft reset brings the therapy back."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

DAY_MS = 86_400_000


def mpremote(port, *args):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=60)


def test_maintenance_then_mpremote_then_soft_reset_resumes_therapy(bench):
    client = bench.client()
    client.refill(volume_ul=20_000, concentration_ug_per_ml=2000)
    client.program_continuous(daily_dose_ug=500)
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 500
    client.maintenance()
    client.close()

    listing = mpremote(bench.port, "fs", "ls")
    assert listing.returncode == 0, listing.stderr
    for name in ("main.py", "boardcfg.mpy", "pump/"):
        assert name in listing.stdout
    listing = mpremote(bench.port, "fs", "ls", "pump")
    assert "app.mpy" in listing.stdout

    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 500  # stopped while in maintenance

    reset = mpremote(bench.port, "soft-reset")
    assert reset.returncode == 0, reset.stderr
    bench.advance_days(1)
    assert bench.rig.measure()["pulses"] == 1000  # the programmed therapy runs again
    status = bench.client().status()
    assert status["state"] == "infusing"
    assert status["daily_dose_ug"] == 500


def test_maintenance_needs_the_key(bench):
    from pumpsim import frames
    from pumpsim.errors import PumpsimError, Refused

    with pytest.raises(PumpsimError, match="key"):
        bench.client(key=False).maintenance()  # the client will not even ask without the key
    # Asked anyway, without a MAC, the firmware refuses and keeps running.
    client = bench.client(key=False)
    client._port.write(frames.request(7, "maintenance", {}))
    with pytest.raises(Refused) as refused:
        client._await(7, "maintenance")
    assert refused.value.code == "E_AUTH"
    status = bench.client().status()
    assert status["auth_failures"] == 1
