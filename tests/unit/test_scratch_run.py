"""A scratch run's namespace is discarded after its block, and a failure to do so is reported,
not raised over the block's own outcome."""

import pytest

from streamrec.infra.core.config import load_config
from streamrec.infra.devstack.scratch_run import ScratchRun


@pytest.mark.slow
def test_services_down_at_discard_are_reported_and_the_result_kept(isolated_env):
    run = ScratchRun.create(load_config(None), "bench-x")  # no stack is running
    said = []
    with run.discarded_afterwards(said.append):
        result = 42
    assert result == 42
    assert len(said) == 1 and said[0].startswith("could not delete the run's topics and keys")
    assert "unreachable" in said[0]


@pytest.mark.slow
def test_the_blocks_own_error_is_what_surfaces(isolated_env):
    run = ScratchRun.create(load_config(None), "bench-x")
    said = []
    with (
        pytest.raises(ValueError, match="the measurement failed"),
        run.discarded_afterwards(said.append),
    ):
        raise ValueError("the measurement failed")
    assert len(said) == 1
