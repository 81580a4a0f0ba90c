"""The loss given the past inside the solver: the predictor trains on its own NLL, the encoder gets the
loss on the innovations (and the predictability term), everything checkpointed and resumed exactly;
unsupported combinations refused at start with the key named. Tiny codec, CPU, seconds."""

import copy

import pytest
import torch

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config

from common_utils import mmd_cfg, train_steps


@pytest.mark.parametrize("alignment, kind", [("delay", "conv"), ("parallel", "conv"), ("delay", "gru")])
def test_loss_on_innovations_trains_encoder_and_predictor(make_tiny_solver, alignment, kind):
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", "mmd.condition=past", f"mmd.alignment={alignment}",
                              "mmd.predictor.hidden=16", "mmd.predictor.receptive_field=3",
                              f"mmd.predictor.kind={kind}")
    assert solver.past_predictor is not None and solver.innovations_loss is not None
    assert solver.innovations_loss.delays is None  # g already aligned its rows
    batch = next(iter(solver.dataloaders["train"]))
    predictor_before = copy.deepcopy(solver.past_predictor.predictor.state_dict())
    encoder_before = [p.detach().clone() for p in solver.model.encoder.parameters()]
    for metrics in train_steps(solver, batch, 2):
        for key in ["mmd", "mmd_loss", "mmd_grad_ratio", "predictor_nll", "predictor_nll_update", "predictor_nll_q3"]:
            assert torch.isfinite(torch.as_tensor(metrics[key])), key
        assert metrics["mmd_grad_ratio"] > 0 and metrics["nonfinite_step"] == 0.
    after = solver.past_predictor.predictor.state_dict()
    assert any(not torch.equal(predictor_before[k], after[k]) for k in after)
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, solver.model.encoder.parameters()))
    valid = []
    solver.run_stage("valid", lambda: valid.append(solver.run_step(0, batch, {})))
    assert "predictor_nll" in valid[0] and "predictor_nll_update" not in valid[0]  # measured, not trained


@pytest.mark.parametrize("alignment", ["delay", "parallel"])
def test_conditional_product_trains_the_encoder(make_tiny_solver, alignment):
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", "mmd.condition=neighbours",
                              "mmd.estimator=permutation_debiased", f"mmd.alignment={alignment}",
                              "mmd.predictor.hidden=16", "mmd.predictor.neighbours=4")
    assert solver.past_predictor is not None and solver.innovations_loss is None
    batch = next(iter(solver.dataloaders["train"]))
    encoder_before = [p.detach().clone() for p in solver.model.encoder.parameters()]
    for metrics in train_steps(solver, batch, 2):
        for key in ["mmd", "mmd_loss", "predictor_nll_update"]:
            assert torch.isfinite(torch.as_tensor(metrics[key])), key
        assert metrics["mmd_grad_ratio"] > 0
        frames = 50 - (3 if alignment == "delay" else 0)  # 1 s at 50 Hz, less the delays
        assert metrics["mmd_rows"] == 4 * frames
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, solver.model.encoder.parameters()))


def test_loss_on_innovations_with_the_weight_steered_to_a_gradient_share(make_tiny_solver):
    solver = make_tiny_solver("mmd.weight=1", "mmd.condition=past", "mmd.target_grad_ratio=1.0", "mmd.clamp=false",
                              "mmd.predictor.hidden=16")
    batch = next(iter(solver.dataloaders["train"]))
    weights = [metrics["mmd_weight"] for metrics in train_steps(solver, batch, 3)]
    assert weights[0] == 1.0 and weights[-1] != 1.0  # steered by the innovations' loss gradient


def test_predictability_alone_reaches_the_encoder(make_tiny_solver):
    solver = make_tiny_solver("mmd.weight=0", "mmd.predictability=1", "mmd.predictor.hidden=16")
    assert solver.past_predictor is not None and solver.innovations_loss is None  # the statistic stays the paper's
    batch = next(iter(solver.dataloaders["train"]))
    (metrics,) = train_steps(solver, batch, 1)
    assert metrics["mmd_loss"] == pytest.approx(float(metrics["predictor_nll"]))  # lambda_p x NLL, nothing else
    assert metrics["mmd_grad_ratio"] > 0


def test_no_predictor_by_default(tiny_solver):
    assert tiny_solver.past_predictor is None and "past_predictor" not in tiny_solver.state_dict()


def test_resume_with_the_predictor_is_exact(make_tiny_solver):
    """Loading the state saved after 2 steps, then the same 2 steps again, repeats them exactly: nothing
    the steps change (g, its Adam moments, the encoder, the RNGs) is missing from the state."""
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", "mmd.condition=past", "mmd.predictability=0.5",
                              "mmd.predictor.hidden=16")
    batch = next(iter(solver.dataloaders["train"]))
    saved: dict = {}
    first, again = [], []

    def run():
        solver.run_step(0, batch, {})
        saved.update(copy.deepcopy(solver.state_dict()))  # state dicts hold the live tensors
        first.extend(solver.run_step(idx, batch, {}) for idx in (1, 2))
        weights = copy.deepcopy(solver.past_predictor.predictor.state_dict())
        solver.load_state_dict(saved)
        again.extend(solver.run_step(idx, batch, {}) for idx in (1, 2))
        for name, value in solver.past_predictor.predictor.state_dict().items():
            assert torch.equal(value, weights[name]), name

    solver.run_stage("train", run)
    assert set(saved["past_predictor"]) == {"predictor", "optimizer"}
    assert saved["past_predictor"]["optimizer"]["state"]  # Adam moments after the first update
    for ours, theirs in zip(again, first):
        for key in ["mmd", "mmd_loss", "predictor_nll", "predictor_nll_update", "l1", "sisnr"]:
            assert float(ours[key]) == float(theirs[key]), key
    assert float(first[0]["predictor_nll"]) != float(first[1]["predictor_nll"])  # the steps did change things


@pytest.mark.parametrize("overrides, key", [
    (dict(condition="future"), "mmd.condition"),
    (dict(predictability=-1.), "mmd.predictability"),
    (dict(condition="past", predictor=dict(kind="lstm")), "mmd.predictor.kind"),
    (dict(condition="past", predictor=dict(receptive_field=0)), "mmd.predictor.receptive_field"),
    (dict(predictability=1., predictor=dict(hidden=2.5)), "mmd.predictor.hidden"),
    (dict(condition="past", predictor=dict(lr=0.)), "mmd.predictor.lr"),
    (dict(condition="past", predictor=dict(betas=[0.9])), "mmd.predictor.betas"),
    (dict(condition="past", predictor=dict(steps=0)), "mmd.predictor.steps"),
    (dict(condition="past", scope="global"), "mmd.scope"),
    (dict(condition="past", macro_batch=2), "mmd.macro_batch"),
    (dict(condition="past", bank=2), "mmd.bank"),
    (dict(condition="past", adversary=dict(weight=1.)), "mmd.adversary.weight"),
    (dict(predictability=1., estimator="soft_mi"), "mmd.estimator"),
    (dict(condition="past", predictability=1., target_grad_ratio=1.), "mmd.target_grad_ratio"),
    (dict(condition="neighbours"), "mmd.estimator"),
    (dict(condition="neighbours", estimator="permutation_debiased", product="clip"), "mmd.product"),
    (dict(condition="neighbours", estimator="permutation_debiased", predictor=dict(neighbours=0)),
     "mmd.predictor.neighbours"),
])
def test_bad_or_unsupported_options_are_refused(overrides, key):
    cfg = mmd_cfg()
    for name, value in overrides.items():
        if isinstance(value, dict):
            cfg.mmd[name].update(value)
        else:
            cfg.mmd[name] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_mmd_config(cfg)


def test_more_neighbours_than_rows_is_refused_at_start(make_tiny_solver):
    with pytest.raises(ConfigError, match=r"mmd\.predictor\.neighbours=1000 must be below the 188 rows"):
        make_tiny_solver("mmd.condition=neighbours", "mmd.estimator=permutation_debiased",
                         "mmd.predictor.neighbours=1000")


def test_quantizer_dropout_is_refused_with_the_predictor():
    cfg = mmd_cfg(condition="past")
    cfg.rvq.q_dropout = True
    with pytest.raises(ConfigError, match=r"rvq\.q_dropout"):
        validate_mmd_config(cfg)
