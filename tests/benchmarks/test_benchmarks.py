"""The estimator benchmark (audiocraft_mmd.benchmarks.estimators) runs and measures what it says.

Fast checks only: the timed run itself is ``python -m audiocraft_mmd.benchmarks.estimators``.
"""

import subprocess
import sys

import pytest
import torch

from audiocraft_mmd.benchmarks import estimators as bench
from audiocraft_mmd.losses import get_estimator


def test_reference_style_equals_the_registered_permutation_estimator():
    samples = torch.randn(40, 4, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    samples[:, 1] += samples[:, 0] ** 2
    bandwidths = torch.tensor([4.0, 16.0, 64.0], dtype=torch.float64)
    reference = bench.reference_permutation_mmd(samples, bandwidths, torch.Generator().manual_seed(3))
    registered = get_estimator("permutation")(samples, bandwidths, torch.Generator().manual_seed(3))
    assert reference.item() == pytest.approx(registered.item(), rel=1e-9)


def test_reference_style_gradient_goes_through_the_checkpoints():
    samples = torch.randn(30, 4, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64,
                          requires_grad=True)
    bandwidths = torch.tensor([4.0, 16.0], dtype=torch.float64)
    value = bench.reference_permutation_mmd(samples, bandwidths, torch.Generator().manual_seed(3))
    grad, = torch.autograd.grad(value, samples)
    expected = get_estimator("permutation")(samples, bandwidths, torch.Generator().manual_seed(3))
    expected_grad, = torch.autograd.grad(expected, samples)
    assert torch.allclose(grad, expected_grad, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("estimator", list(bench.ESTIMATOR_FNS))
def test_run_case_reports_time_and_memory(estimator):
    result = bench.run_case(estimator, rows=128, bandwidth_set="dim", repeats=2)
    assert result["estimator"] == estimator and result["rows"] == 128 and len(result["times"]) == 2
    assert result["time"] == min(result["times"]) > 0 and result["peak_mb"] >= 0


def test_help_and_argument_errors():
    done = subprocess.run([sys.executable, "-m", "audiocraft_mmd.benchmarks.estimators", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--quick" in done.stdout and "--bandwidths" in done.stdout
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--rows", "1"])
    quick = bench.parse_args(["--quick"])
    assert quick.rows == [256, 1024] and quick.repeats == 1


def test_training_step_benchmark_runs_the_schedule(tmp_path):
    """A tiny run of `python -m audiocraft_mmd.benchmarks.training_step`: the macro step holds M batches."""
    import json
    from audiocraft_mmd.benchmarks import training_step

    results = training_step.main(["--macro-batch", "2", "--baseline-steps", "1", "--warmup", "0",
                                  "--per-step-steps", "1",
                                  "--json", str(tmp_path / "step.json"), "seanet.n_filters=4", "seanet.lstm=0",
                                  "msstftd.filters=4", "rvq.bins=64"])
    assert results["rows"] == 2 * 3 * 47  # M batches x B clips x (50 frames - 3 delays)
    assert len(results["schedule_steps_s"]) == 2 and results["lambda0_step_s"] > 0
    assert results["bank_rows"] == results["rows"] and len(results["bank_steps_s"]) == 1  # one cycle of M - 1 steps
    assert results["per_step_metrics"]["mmd_rows"] == 3 * 47 and len(results["per_step_steps_s"]) == 1
    assert "mmd" in results["schedule_metrics"] and "g_loss" in results["lambda0_metrics"]
    assert json.loads((tmp_path / "step.json").read_text())["macro_batch"] == 2


def test_depth_lm_benchmark_times_each_pattern_with_the_depth_block_overridden(capsys):
    from audiocraft_mmd.benchmarks import depth_lm
    timings = depth_lm.main(["--patterns", "parallel,depth", "--duration", "0.05", "--repeats", "1",
                             "--depth", "context=every", "--depth", "dim=32"])
    parallel, depth = timings
    assert parallel.ratio_to_parallel == 1 and depth.depth_steps == 5 * 4 and parallel.depth_steps == 0
    plain = depth_lm.run(["parallel", "depth"], duration=0.05, repeats=1)[1]
    assert depth.parameters != plain.parameters  # the override reached the depth block
    assert "depth context=every, depth dim=32:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        depth_lm.main(["--depth", "context"])


def test_conditional_step_benchmark_times_each_form_in_turn(tmp_path, monkeypatch):
    """A tiny run of `python -m audiocraft_mmd.benchmarks.conditional_step`: every form really runs."""
    import json
    from audiocraft_mmd.benchmarks import conditional_step
    from audiocraft_mmd.solvers.past_predictor import PastPredictor

    conditional_products = []
    original = PastPredictor.conditional_product
    monkeypatch.setattr(PastPredictor, "conditional_product",
                        lambda self, *args: conditional_products.append(1) or original(self, *args))

    results = conditional_step.main(["--steps", "1", "--warmup", "0", "--json", str(tmp_path / "step.json"),
                                     "seanet.n_filters=4", "dataset.batch_size=2", "mmd.predictor.hidden=8"])
    assert results["paper_step_s"] > 0 and len(results["past_steps_s"]) == 1
    assert results["past_ratio"] == results["past_steps_s"][0] / results["paper_steps_s"][0]  # one round
    assert "predictor_nll" not in results["paper_metrics"]            # the predictor off
    assert "predictor_nll_update" in results["past_metrics"]          # trained in the innovations form
    predictability = results["predictability_metrics"]
    assert predictability["mmd_loss"] > predictability["mmd_weight"] * predictability["mmd"]  # λp · NLL added
    assert results["neighbours_step_s"] > 0 and results["neighbours_metrics"]["mmd_rows"] == 2 * 97
    assert len(conditional_products) == 1  # the neighbours form's step, and no other
    assert json.loads((tmp_path / "step.json").read_text())["batch_size"] == 2
