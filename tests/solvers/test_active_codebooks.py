"""RVQ with a variable number of active codebooks (quantizer dropout, lower bandwidths): the loss
and the metrics use the codebooks of each pass, with their delays."""

import pytest
import torch

from audiocraft_mmd.losses import MMDIndependenceLoss, mmd_independence
from audiocraft_mmd.quantization import capture_streams, frozen_codebooks
from audiocraft_mmd.solvers.evaluation import EvaluationBatch, build_evaluation_plugins

from common_utils import train_steps


def test_first_codebooks_keeps_the_first_delays():
    loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3], clamp=False)
    streams = torch.randn(3, 2, 8, 20)
    value = loss_fn.first_codebooks(2)(streams)
    expected = mmd_independence(streams, delays=[0, 1], clamp=False).estimate
    torch.testing.assert_close(value, expected)
    assert loss_fn.first_codebooks(4) is loss_fn
    with pytest.raises(ValueError, match="5 active codebooks"):
        loss_fn.first_codebooks(5)


def test_loss_uses_the_active_codebooks_under_quantizer_dropout(tiny_solver):
    batch = next(iter(tiny_solver.dataloaders["train"]))
    frames = 50  # 1 s at 50 Hz
    tiny_solver.model.quantizer.q_dropout = True
    torch.manual_seed(1)
    steps = train_steps(tiny_solver, batch, 8)
    active = [int(metrics["mmd_codebooks"]) for metrics in steps]
    assert len(set(active)) > 1 and min(active) < 4, active  # dropout did vary the stages
    for k, metrics in zip(active, steps):
        assert torch.isfinite(torch.as_tensor(metrics["g_loss"]))
        assert {f"usage_q{q}" for q in range(k)} <= set(metrics) and f"usage_q{k}" not in metrics
        if k >= 2:  # delay alignment of the K active codebooks: delays 0..K-1
            assert metrics["mmd_rows"] == batch.shape[0] * (frames - (k - 1))
            assert "mmd_loss" in metrics
        else:  # one codebook: nothing to make independent, the step trains without the loss
            assert "mmd" not in metrics and "mmd_loss" not in metrics


def test_lower_bandwidth_pass_and_its_metrics(make_tiny_solver):
    """Two of four codebooks set active (bandwidth-scalable use): the loss, its gradient to the
    encoder and the evaluate plugins all see K = 2."""
    # Unclamped: with K = 2 on a tiny batch the estimate is near 0, and a clamped negative one has no gradient.
    tiny_solver = make_tiny_solver("mmd.clamp=false")
    model = tiny_solver.model
    batch = next(iter(tiny_solver.dataloaders["train"]))
    seen = {}

    def run():
        tiny_solver.run_step(0, batch, {})  # k-means initialisation with all codebooks
        model.quantizer.set_num_codebooks(2)
        seen["metrics"] = tiny_solver.run_step(1, batch, {})

    tiny_solver.run_stage("train", run)
    metrics = seen["metrics"]
    assert metrics["mmd_codebooks"] == 2 and metrics["mmd_rows"] == batch.shape[0] * 49
    assert metrics["mmd_grad_ratio"] > 0  # the loss's gradient reached the encoder output

    model.eval()
    with torch.no_grad(), capture_streams(model) as captured:
        reconstruction = model(batch).x
    assert captured.streams.shape[1] == 2 and captured.codes.shape[1] == 2
    plugins = build_evaluation_plugins(["codebooks", "mmd", "dependence"], tiny_solver)
    for plugin in plugins.values():
        plugin.update(EvaluationBatch(batch, reconstruction, captured))
    results = {}
    for plugin in plugins.values():
        results.update(plugin.compute())
    assert "entropy_q1" in results and "entropy_q2" not in results
    expected = mmd_independence(captured.streams, delays=[0, 1], clamp=False).estimate.item()
    assert results["mmd_estimate"] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert "mi_delay" in results


def test_macro_batch_re_encoding_has_no_dropout(tiny_solver):
    model = tiny_solver.model.train()
    model.quantizer.q_dropout = True
    audio = torch.randn(2, 1, 16000)
    with torch.no_grad():
        model(audio)  # k-means initialisation
    for seed in range(5):
        torch.manual_seed(seed)
        with frozen_codebooks(model), capture_streams(model) as captured:
            model.quantizer(model.encoder(audio), model.frame_rate)
        assert captured.streams.shape[1] == 4
    assert model.quantizer.q_dropout is True
