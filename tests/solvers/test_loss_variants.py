"""The loss variants inside the solver: the within-clip product, the soft-assignment MI, the weight's
warmup and ramp, and a weight steered to a target gradient share (checkpointed). Tiny codec, CPU, seconds."""

import copy

import pytest
import torch

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.losses import MMDIndependenceLoss
from audiocraft_mmd.losses.soft_mi import SoftMutualInformationLoss
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config
from audiocraft_mmd.solvers.mmd_weight import MMDWeight
from audiocraft_mmd.solvers.evaluation import EvaluationBatch, build_evaluation_plugins
from audiocraft_mmd.quantization import capture_streams
from audiocraft_mmd.quantization.streams import STREAM_SOURCES

from common_utils import mmd_cfg, train_steps


@pytest.mark.parametrize("overrides", [["mmd.product=clip"], ["mmd.product=chunk", "mmd.chunk_frames=6"],
                                        ["mmd.estimator=soft_mi", "mmd.product=clip"],
                                        ["mmd.estimator=soft_mi", "mmd.alignment=parallel"]])
def test_variants_train_and_evaluate(make_tiny_solver, overrides):
    # Unclamped: a bias-corrected estimate near 0 may be negative, and a clamped one then has no gradient.
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", *overrides)
    batch = next(iter(solver.dataloaders["train"]))
    before = [p.detach().clone() for p in solver.model.encoder.parameters()]
    for metrics in train_steps(solver, batch, 2):
        for key in ["mmd", "mmd_loss", "mmd_grad_ratio", "mmd_weight"]:
            assert torch.isfinite(torch.as_tensor(metrics[key])), key
        assert metrics["mmd_grad_ratio"] > 0  # the loss's gradient reaches the encoder
    assert any(not torch.equal(a, b) for a, b in zip(before, solver.model.encoder.parameters()))
    plugins = build_evaluation_plugins(["mmd", "dependence"], solver)
    solver.model.eval()
    with torch.no_grad(), capture_streams(solver.model) as captured:
        reconstruction = solver.model(batch).x
    for plugin in plugins.values():
        plugin.update(EvaluationBatch(batch, reconstruction, captured))
    metrics = {key: value for plugin in plugins.values() for key, value in plugin.compute().items()}
    for key in ["mmd_estimate", "mi_fast_delay", "mi_slow_delay", "mi_fast_parallel"]:
        assert key in metrics and torch.isfinite(torch.as_tensor(metrics[key])), key


def clip_cause_stream(residual, quantized):
    """The quantized stream plus one random vector per clip, the same for every codebook: the codebooks
    depend on one another through the clip they come from."""
    cause = torch.randn(quantized.shape[0], quantized.shape[1], 1, generator=torch.Generator().manual_seed(0))
    return quantized + 3 * quantized.detach().std() * cause


def record_loss_calls(monkeypatch, loss_class):
    """The inputs of every call of ``loss_class``'s forward (detached), and its generator's state before it."""
    calls = []
    forward = loss_class.forward

    def recorded(self, *inputs, generator=None, **kwargs):
        calls.append(([x.detach().clone() for x in inputs], None if generator is None else generator.get_state()))
        return forward(self, *inputs, generator=generator, **kwargs)
    monkeypatch.setattr(loss_class, "forward", recorded)
    return calls


@pytest.mark.parametrize("product", ["clip", "chunk"])  # pooled, the default, is trained everywhere else
def test_the_product_option_reaches_the_trained_loss(make_tiny_solver, monkeypatch, product):
    # Rows that depend on one another through their clip only: pooled reads that, clip and chunk must not.
    monkeypatch.setitem(STREAM_SOURCES, "clip_cause", clip_cause_stream)
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", "mmd.source=clip_cause", f"mmd.product={product}",
                              "mmd.chunk_frames=6")
    calls = record_loss_calls(monkeypatch, MMDIndependenceLoss)
    batch = next(iter(solver.dataloaders["train"]))
    (metrics,) = train_steps(solver, batch, 1)
    ((streams,), _), = calls  # hsic draws nothing at random
    options = {**solver.mmd_loss.options(), "chunk_frames": 6}
    expected = {name: MMDIndependenceLoss(clamp=False, **{**options, "product": name})(streams).item()
                for name in ("pooled", "clip", "chunk")}
    assert expected["pooled"] > 20 * max(abs(expected["clip"]), abs(expected["chunk"]))
    assert float(metrics["mmd"]) == pytest.approx(expected[product], rel=1e-5, abs=1e-9)


def test_soft_mi_reads_the_clip_product(make_tiny_solver, monkeypatch):
    solver = make_tiny_solver("mmd.weight=10", "mmd.clamp=false", "mmd.estimator=soft_mi", "mmd.product=clip")
    calls = record_loss_calls(monkeypatch, SoftMutualInformationLoss)
    batch = next(iter(solver.dataloaders["train"]))
    (metrics,) = train_steps(solver, batch, 1)
    (inputs, state), = calls
    expected = {}
    for product in ("pooled", "clip"):
        generator = torch.Generator()
        generator.set_state(state)
        loss = SoftMutualInformationLoss(delays=solver.mmd_loss.delays, temperature=solver.mmd_loss.temperature,
                                         product=product, clamp=False)
        loss(*inputs, generator=generator)
        assert loss.last_result is not None
        expected[product] = loss.last_result.estimate.item()
    assert expected["clip"] != pytest.approx(expected["pooled"], rel=1e-3)
    assert float(metrics["mmd"]) == pytest.approx(expected["clip"], rel=1e-5)


def test_soft_mi_solver_uses_the_soft_loss(make_tiny_solver):
    solver = make_tiny_solver("mmd.estimator=soft_mi", "mmd.temperature=0.5")
    assert isinstance(solver.mmd_loss, SoftMutualInformationLoss) and solver.mmd_loss.temperature == 0.5


def test_warmup_and_ramp_schedule(make_tiny_solver):
    solver = make_tiny_solver("mmd.weight=8", "mmd.warmup=2", "mmd.ramp=2")
    batch = next(iter(solver.dataloaders["train"]))
    weights = [metrics["mmd_weight"] for metrics in train_steps(solver, batch, 5)]
    assert weights == [0., 0., 4., 8., 8.]
    assert [MMDWeight(8., warmup=2, ramp=2)(update) for update in range(5)] == weights


def test_target_grad_ratio_steers_the_weight_and_is_checkpointed(make_tiny_solver):
    solver = make_tiny_solver("mmd.weight=1", "mmd.target_grad_ratio=1.0")
    batch = next(iter(solver.dataloaders["train"]))
    steps = train_steps(solver, batch, 6)
    assert steps[0]["mmd_weight"] == 1.0  # the start value, before any gradient was seen
    weights = [metrics["mmd_weight"] for metrics in steps]
    assert weights[-1] != 1.0
    # The steered weight is what the observed averages give: target x |grad other| / |grad L_inde|.
    weight = solver.mmd_weight
    assert weight.full_weight() == pytest.approx(weight.other_norm / weight.loss_norm)
    state = copy.deepcopy(solver.state_dict()["mmd_weight"])
    fresh = MMDWeight(1., target_grad_ratio=1.)
    fresh.load_state_dict(state)
    assert fresh.full_weight() == weight.full_weight()


def test_weight_observes_the_ratio():
    weight = MMDWeight(5., target_grad_ratio=2.)
    weight.observe(weighted_grad_norm=10., other_grad_norm=4., weight=5.)  # |grad L| = 2
    assert weight(0) == pytest.approx(2. * 4. / 2.)
    weight.observe(weighted_grad_norm=0., other_grad_norm=4., weight=4.)  # a clamped loss says nothing
    assert weight(0) == pytest.approx(4.)


@pytest.mark.parametrize("overrides, key", [
    (dict(product="frame"), "mmd.product"),
    (dict(product="chunk", chunk_frames=1), "mmd.chunk_frames"),
    (dict(estimator="soft_mi", product="chunk"), "mmd.product"),
    (dict(bank=2, product="clip"), "mmd.product"),
    (dict(estimator="soft_mi", temperature=0.), "mmd.temperature"),
    (dict(estimator="soft_mi", source="residual"), "mmd.source"),
    (dict(estimator="soft_mi", macro_batch=2), "mmd.macro_batch"),
    (dict(warmup=-1), "mmd.warmup"),
    (dict(ramp=1.5), "mmd.ramp"),
    (dict(target_grad_ratio=0.), "mmd.target_grad_ratio"),
    (dict(weight=0., target_grad_ratio=1.), "mmd.weight"),
    (dict(target_grad_ratio=1., macro_batch=2), "mmd.macro_batch"),
])
def test_bad_variant_options_are_refused(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_mmd_config(mmd_cfg(**overrides))


@pytest.mark.parametrize("chunk, message", [(100000, r"mmd\.chunk_frames=100000 aligned frames per clip"),
                                            (2, "estimates the loss on 2 rows at a time")])
def test_chunks_longer_than_a_clip_or_too_short_are_refused_at_start(make_tiny_solver, chunk, message):
    with pytest.raises(ConfigError, match=message):
        make_tiny_solver("mmd.weight=10", "mmd.product=chunk", f"mmd.chunk_frames={chunk}")
