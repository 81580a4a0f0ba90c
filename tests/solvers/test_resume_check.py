"""Resuming a checkpoint whose model config changed is refused, naming the changed keys."""

import copy

import omegaconf
import pytest

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.solvers.resume import model_config_changes


def test_same_config_resumes(tiny_solver):
    tiny_solver.load_state_dict(tiny_solver.state_dict())


@pytest.mark.parametrize("key, value", [("seanet.n_filters", 16), ("seanet.activation", "GELU"),
                                        ("rvq.bins", 512), ("sample_rate", 24000)])
def test_changed_model_config_is_refused(tiny_solver, key, value):
    state = tiny_solver.state_dict()
    saved = copy.deepcopy(state["xp.cfg"])
    omegaconf.OmegaConf.update(saved, key, value)
    state["xp.cfg"] = saved
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        tiny_solver.load_state_dict(state)


def test_training_only_changes_are_not_model_changes(tiny_solver):
    saved = copy.deepcopy(tiny_solver.cfg)
    saved.optim.lr = 1.0
    saved.mmd.weight = 5.0
    assert model_config_changes(saved, tiny_solver.cfg) == []
