"""The refill discrepancy limit is programmable (`config`): a refill is flagged against the limit
that was set, not the default 14.5 %. The figures are worked out here, never asked of the firmware."""

import pytest

from .helpers import Bench

FILL = {"volume_ul": 20000, "concentration_ug_per_ml": 2000}


@pytest.fixture
def bench(tmp_path):
    bench = Bench(tmp_path / "data")
    bench.hello()
    assert bench.request("refill", FILL)[0] == "ok"  # no time passes: 20 000 µL calculated
    return bench


@pytest.mark.parametrize("withdrawn_ul, flagged", [
    (17_600, True),   # 12 % less than calculated: above a 10 % limit, below the default
    (22_400, True),   # 12 % more
    (18_400, False),  # 8 % less
    (21_600, False),  # 8 % more
])
def test_a_10_percent_limit_flags_what_the_default_would_not(bench, withdrawn_ul, flagged):
    assert bench.request("config", {"discrepancy_limit_permille": 100})[0] == "ok"
    verb, reply = bench.request("refill", dict(FILL, withdrawn_ul=withdrawn_ul))
    assert verb == "ok" and reply["flagged"] is flagged
