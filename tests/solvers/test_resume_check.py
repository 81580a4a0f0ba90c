"""Resuming a checkpoint whose model config changed is refused, naming the changed keys."""

import copy

import omegaconf
import pytest
import torch

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.solvers.resume import model_config_changes


def test_same_config_resumes_the_saved_state(tiny_solver):
    # Saved, trained past, then restored: a restore that ignored its input keeps the later state.
    batch = next(iter(tiny_solver.dataloaders["train"]))
    saved = {}

    def train():
        tiny_solver.run_step(0, batch, {})  # the optimizer has moments, the RNGs have moved
        saved.update(copy.deepcopy(tiny_solver.state_dict()))
        for idx in (1, 2):
            tiny_solver.run_step(idx, batch, {})
    tiny_solver.run_stage("train", train)
    moved = tiny_solver.model.state_dict()
    assert any(not torch.equal(moved[name], tensor) for name, tensor in saved["model"].items())
    tiny_solver.load_state_dict(copy.deepcopy(saved))
    restored = tiny_solver.model.state_dict()
    assert restored.keys() == saved["model"].keys()
    for name, tensor in saved["model"].items():
        assert torch.equal(restored[name], tensor), name
    moments = tiny_solver.optimizer.state_dict()["state"]
    assert moments.keys() == saved["optimizer"]["state"].keys() and moments
    for index, moment in saved["optimizer"]["state"].items():
        for key, value in moment.items():
            assert torch.equal(torch.as_tensor(moments[index][key]), torch.as_tensor(value)), (index, key)
    assert torch.equal(tiny_solver.mmd_rng.get_state(), saved["mmd_rng_state"]["state"])
    assert torch.equal(torch.get_rng_state(), saved["global_rng_state"]["torch"])
    assert tiny_solver.balancer.averager.state_dict() == saved["balancer.averager"]


@pytest.mark.parametrize("key, value", [("seanet.n_filters", 16), ("seanet.activation", "GELU"),
                                        ("rvq.bins", 512), ("sample_rate", 24000),
                                        # same weights, another model: they would load without a word
                                        ("upsampling.mode", "nearest"), ("spectral_encoder.n_fft", 512)])
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
    saved.upsampling.transposed_init = "nearest"  # the initial weights only: a resumed model loads its own
    assert model_config_changes(saved, tiny_solver.cfg) == []
    omegaconf.OmegaConf.set_struct(saved, False)
    for key in ("transposed_init", "transposed_average"):  # a checkpoint written before the keys existed
        del saved.upsampling[key]
    assert model_config_changes(saved, tiny_solver.cfg) == []
    current = copy.deepcopy(tiny_solver.cfg)
    current.upsampling.transposed_average = True  # another model than the one such a checkpoint holds
    assert model_config_changes(saved, current) == [("upsampling.transposed_average", False, True)]
