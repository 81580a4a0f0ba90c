"""Checks that need CUDA: marked ``gpu`` (deselected by default), skipped with the reason without CUDA.

``./mmd-env pytest -m gpu`` runs them; ``./mmd-env scripts/gpu_check`` runs them and the GPU timings
and writes one JSON (see docs/research/PERFORMANCE.md).

**Autocast tolerances.** The loss turns autocast off and upcasts half-precision streams to float32
(``losses/mmd.py``): its kernels and sums always run in float32. So

- float32 streams under bf16/fp16 autocast must give the float32 result up to float32 rounding
  (``FLOAT32_RTOL``: reductions on the GPU may sum in another order, ~1e-6 relative);
- streams that arrive in bf16/fp16 (an encoder run under autocast) differ only by the rounding of
  the streams themselves, at most ``eps/2`` relative per element (``eps``: the dtype's machine
  epsilon, 2^-7 for bf16, 2^-10 for fp16). Its first-order effect on the estimate is at most
  ``sum_i |dL/dx_i| |x_i| eps/2``, computed from the float32 gradient on the same streams; the test
  allows twice that (second-order terms) plus 1e-6. The gradient, computed in float32 and rounded
  once to the dtype (eps/2 relative), moves with the inputs by the same order: the test allows a
  relative error (Frobenius norm) of ``4 eps``, with the loss scaled for the backward pass as
  GradScaler does in fp16 training (without it, fp16 gradients of ~1e-6 are subnormal and lose
  their precision: on CPU, a relative error of 7e-2 for hsic, against 3e-3 with scaling).
"""

import contextlib

import pytest
import torch

from common_utils import AUTOCAST_DTYPES, GPU_ESTIMATORS, PATTERNS, check_two_processes_match_one, lm_config

NO_CUDA = "CUDA is absent (torch.cuda.is_available() is False): GPU checks skipped"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]

FLOAT32_RTOL = 1e-5
PAPER_SOLVER_STEPS = 2  # macro-batch M, and steps of each mode


def dependent_streams(device: str = "cuda") -> torch.Tensor:
    """``[B, K, D, T]`` streams whose codebook 1 depends on codebook 0 at the same frame (no delays
    are used), so that the estimate is well above 0."""
    generator = torch.Generator().manual_seed(0)
    streams = torch.randn(8, 4, 32, 50, generator=generator)
    streams[:, 1] = torch.tanh(2 * streams[:, 0]) + 0.3 * streams[:, 1]
    return streams.to(device)


def value_and_grad(streams: torch.Tensor, estimator: str, dtype=None, scale: float = 1.):
    """The estimate and its gradient w.r.t. ``streams`` (in float32), the loss multiplied by ``scale``
    for the backward pass (GradScaler's loss scaling) and the gradient divided by it."""
    from audiocraft_mmd.losses import mmd_independence

    streams = streams.detach().requires_grad_(True)
    autocast = torch.autocast(streams.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with autocast:
        estimate = mmd_independence(streams, estimator=estimator, clamp=False,
                                    generator=torch.Generator().manual_seed(1)).estimate
    (estimate * scale).backward()
    return estimate.detach().float(), streams.grad.float() / scale


@pytest.mark.parametrize("amp", sorted(AUTOCAST_DTYPES))
@pytest.mark.parametrize("estimator", GPU_ESTIMATORS)
def test_estimator_under_autocast_matches_float32(estimator, amp):
    dtype = AUTOCAST_DTYPES[amp]
    eps = torch.finfo(dtype).eps
    streams = dependent_streams()
    value, grad = value_and_grad(streams, estimator)
    assert value.abs() > 1e-3 and torch.isfinite(grad).all()

    autocast_value, autocast_grad = value_and_grad(streams, estimator, dtype)
    torch.testing.assert_close(autocast_value, value, rtol=FLOAT32_RTOL, atol=1e-7)
    torch.testing.assert_close(autocast_grad, grad, rtol=FLOAT32_RTOL, atol=1e-7 * grad.abs().max().item())

    # As GradScaler does for fp16 training, a power of 2 that brings the largest gradient near 1
    # (exact in any binary format; without it, fp16 gradients of ~1e-6 fall into the subnormals).
    scale = 2. ** torch.floor(torch.log2(1 / grad.abs().max())).item()
    half_value, half_grad = value_and_grad(streams.to(dtype), estimator, dtype, scale)
    first_order = (grad.abs() * streams.abs()).sum().item() * eps / 2
    assert (half_value - value).abs().item() <= 2 * first_order + 1e-6, (half_value, value, first_order)
    assert ((half_grad - grad).norm() / grad.norm()).item() <= 4 * eps


@pytest.fixture(scope="module")
def paper_solver(tmp_path_factory):
    """``solver=compression/encodec_mmd_32khz`` on CUDA, batch 2, M = 2, on generated 32 kHz audio."""
    from audiocraft_mmd.benchmarks import training_step
    from audiocraft_mmd.utils.step_benchmark import write_audio

    tmp = tmp_path_factory.mktemp("paper")
    egs = write_audio(tmp)
    solver = training_step.build_solver(egs, tmp / "dora", batch_size=2, macro_batch=PAPER_SOLVER_STEPS,
                                        overrides=["device=cuda"], ema_device="cuda")
    assert next(solver.model.parameters()).is_cuda
    return solver


def test_paper_recipe_steps_on_cuda_per_step_macro_batch_and_row_bank(paper_solver):
    """λ = 0 steps, the macro-batch schedule, the row bank and the per-step loss: finite losses, rows counted."""
    from audiocraft_mmd.benchmarks import training_step

    results = training_step.measure(paper_solver, PAPER_SOLVER_STEPS, baseline_steps=1, warmup=1,
                                    per_step_steps=PAPER_SOLVER_STEPS)
    rows_per_batch = 2 * 47  # B clips x (50 frames - 3 delays)
    assert results["rows"] == PAPER_SOLVER_STEPS * rows_per_batch
    assert results["bank_rows"] == PAPER_SOLVER_STEPS * rows_per_batch
    assert results["per_step_metrics"]["mmd_rows"] == rows_per_batch
    for mode in ("lambda0", "schedule", "bank", "per_step"):
        metrics = results[f"{mode}_metrics"]
        assert metrics and all(torch.isfinite(torch.tensor(value)) for value in metrics.values()), (mode, metrics)
    for mode in ("schedule", "bank", "per_step"):
        assert "mmd" in results[f"{mode}_metrics"], mode


@pytest.mark.parametrize("modeling", PATTERNS)
def test_lm_step_and_generation_on_cuda_with_xformers(modeling, monkeypatch):
    from audiocraft.models import builders
    from audiocraft.modules import transformer
    from audiocraft.modules.conditioners import ConditioningAttributes

    calls = []
    attention = transformer.ops.memory_efficient_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return attention(*args, **kwargs)

    monkeypatch.setattr(transformer.ops, "memory_efficient_attention", counted)
    transformer.set_efficient_attention_backend("xformers")
    try:
        config = lm_config(modeling)
        config.device = "cuda"
        config.transformer_lm.memory_efficient = True
        torch.manual_seed(0)
        lm = builders.get_lm_model(config).cuda()
        tokens = ((torch.arange(12)[None, None, :] + torch.arange(4)[None, :, None]).repeat(2, 1, 1) % 16).cuda()
        optimizer = torch.optim.Adam(lm.parameters(), lr=1e-2)
        output = lm.compute_predictions(tokens, [], {})
        loss = torch.nn.functional.cross_entropy(output.logits[output.mask], tokens[output.mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss) and calls, "the step did not go through xformers' attention"
        calls.clear()
        lm.eval()
        attributes = [ConditioningAttributes(text={"description": None}) for _ in range(2)]
        generated = lm.generate(None, attributes, max_gen_len=12, use_sampling=True, top_k=250)
        assert generated.shape == (2, 4, 12) and generated.is_cuda and int(generated.max()) < 16
        assert calls, "generation did not go through xformers' attention"
    finally:
        transformer.set_efficient_attention_backend("torch")


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f"{torch.cuda.device_count()} GPU(s) visible, fewer than 2: NCCL check skipped")
def test_two_ranks_over_nccl_match_one_on_the_global_batch():
    # GPU reductions (NCCL's, cuBLAS's) sum in another order than the CPU reference.
    check_two_processes_match_one("nccl", rtol=1e-4, atol=1e-6)
