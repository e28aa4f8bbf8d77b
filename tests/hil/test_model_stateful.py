"""A virtual board through random clinic lives, checked step by step against the reference model
(hil/model.py); a failure prints its shrunk transcript of `pumpsim` commands."""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from pumpsim.hil.life import PumpLife

pytestmark = pytest.mark.pumpsim_needs("stepped-clock")

# A budget for `make test`: `make soak` runs the long lives (python -m pumpsim.hil.soak).
BUDGET = settings(max_examples=4, stateful_step_count=20, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))


@pytest.mark.timeout(600)  # a failure's shrinking replays many lives
def test_the_board_lives_as_the_model_says(pumpsim_image, request):
    if request.config.getoption("pumpsim_port"):
        pytest.skip("the model drives virtual boards: it cuts their power and corrupts their flash")
    PumpLife.image = pumpsim_image
    run_state_machine_as_test(PumpLife, settings=BUDGET)
