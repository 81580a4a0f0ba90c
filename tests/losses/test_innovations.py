"""Innovations given the past (losses/innovations.py): against a slow loop over steps, causal, and
independence given the past read ≈ 0 on codes that depend only through their shared past."""

import pytest
import torch

from audiocraft_mmd.losses.innovations import (
    CausalPredictor, innovations, standardize_steps, step_innovations, HALF_LOG_TWO_PI)
from audiocraft_mmd.losses.mmd import mmd_independence

from common_utils import fitted_predictor, vector_autoregression


def trained_like(predictor: CausalPredictor, seed: int = 0) -> CausalPredictor:
    """Random weights everywhere (the last layer starts at zero, which would hide indexing errors)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in predictor.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=generator))
    return predictor


def slow_innovations(streams, predictor, delays):
    """One step at a time: align by indexing, standardise, then g on exactly the R steps before t."""
    batch, num_codebooks, dim, frames = streams.shape
    steps = frames - max(delays)
    aligned = torch.stack([torch.stack([streams[:, k, :, t + max(delays) - delays[k]] for k in range(num_codebooks)], 1)
                           for t in range(steps)], -1)
    flat = aligned.reshape(batch, num_codebooks * dim, steps)
    mean, var = flat.mean(dim=(0, 2), keepdim=True), flat.var(dim=(0, 2), unbiased=False, keepdim=True)
    flat = (flat - mean) / torch.sqrt(var + 1e-5)
    radius = predictor.receptive_field
    outputs = []
    for t in range(steps):
        window = torch.zeros(batch, num_codebooks * dim, radius)
        for lag in range(1, radius + 1):
            if t - lag >= 0:
                window[..., radius - lag] = flat[..., t - lag]
        out = predictor.head(predictor.past(window))[..., 0].reshape(batch, 2, num_codebooks, dim)
        mu, raw = out.unbind(1)
        log_scale = 5.0 * torch.tanh(raw / 5.0)
        x = flat[..., t].reshape(batch, num_codebooks, dim)
        outputs.append(((x - mu) * torch.exp(-log_scale), 0.5 * ((x - mu) * torch.exp(-log_scale)) ** 2 + log_scale))
    u = torch.stack([o[0] for o in outputs], -1)
    nll = torch.stack([o[1] for o in outputs], -1).mean() + HALF_LOG_TWO_PI
    return u, nll


@pytest.mark.parametrize("delays", [[0, 0, 0], [0, 1, 2]])
def test_innovations_match_a_loop_over_steps(delays):
    torch.manual_seed(0)
    streams = torch.randn(2, 3, 4, 11)
    predictor = trained_like(CausalPredictor(3, 4, hidden=8, receptive_field=3))
    result = innovations(streams, predictor, delays)
    u, nll = slow_innovations(streams, predictor, delays)
    assert result.innovations.shape == (2, 3, 4, 11 - max(delays))
    torch.testing.assert_close(result.innovations, u, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result.nll, nll, rtol=1e-5, atol=1e-5)
    assert result.nll_per_codebook.shape == (3,)
    torch.testing.assert_close(result.nll_per_codebook.mean(), result.nll)


def test_per_codebook_nll_says_which_codebook_the_past_predicts():
    """Codebook 0 a slow random walk, codebook 1 fresh noise: only codebook 0's NLL falls below ½ log 2πe."""
    generator = torch.Generator().manual_seed(0)
    walk = torch.randn(8, 1, 2, 100, generator=generator).cumsum(-1) * 0.1
    streams = torch.cat([walk, torch.randn(8, 1, 2, 100, generator=generator)], 1)
    predictor = CausalPredictor(2, 2, hidden=16, receptive_field=2)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-2)
    for _ in range(200):
        nll = innovations(streams, predictor).nll
        optimizer.zero_grad()
        nll.backward()
        optimizer.step()
    per_codebook = innovations(streams, predictor).nll_per_codebook
    unpredictable = 0.5 + HALF_LOG_TWO_PI
    assert per_codebook[0] < unpredictable - 0.5 and abs(per_codebook[1] - unpredictable) < 0.05


def test_gru_innovations_match_a_loop_over_steps():
    torch.manual_seed(0)
    streams, delays = torch.randn(2, 3, 4, 11), [0, 1, 2]
    predictor = trained_like(CausalPredictor(3, 4, hidden=8, kind="gru"))
    result = innovations(streams, predictor, delays)
    cell = torch.nn.GRUCell(12, 8)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(predictor.past, f"{name}_l0"))
    aligned = standardize_steps(torch.stack([streams[:, 0, :, 2:], streams[:, 1, :, 1:-1], streams[:, 2, :, :-2]], 1))
    state = cell(torch.zeros(2, 12), torch.zeros(2, 8))  # a zero step first, as the padding
    for t in range(aligned.shape[-1]):  # the state before step t has read steps 0 … t - 1
        mu, raw = predictor.head(state[..., None])[..., 0].reshape(2, 2, 3, 4).unbind(1)
        expected = (aligned[..., t] - mu) * torch.exp(-5.0 * torch.tanh(raw / 5.0))
        torch.testing.assert_close(result.innovations[..., t], expected, rtol=1e-5, atol=1e-5)
        state = cell(aligned[..., t].reshape(2, 12), state)


def test_an_untrained_predictor_gives_the_standardised_streams():
    streams = torch.randn(2, 2, 3, 9)
    result = innovations(streams, CausalPredictor(2, 3, hidden=4, receptive_field=2), [0, 1])
    aligned = torch.stack([streams[:, 0, :, 1:], streams[:, 1, :, :-1]], 1)  # codebook 1 one frame late
    torch.testing.assert_close(result.innovations, standardize_steps(aligned))
    assert result.nll.item() == pytest.approx(0.5 + HALF_LOG_TWO_PI, abs=1e-4)  # unit variance, N(0, 1)


@pytest.mark.parametrize("kind", ["conv", "gru"])
@pytest.mark.parametrize("step", [0, 4, 9])
def test_perturbing_a_step_changes_no_earlier_innovation(step, kind):
    torch.manual_seed(1)
    standardized = torch.randn(2, 3, 4, 10)
    predictor = trained_like(CausalPredictor(3, 4, hidden=8, receptive_field=4, kind=kind))
    before = step_innovations(standardized, predictor)
    perturbed = standardized.clone()
    perturbed[:, 1, 2, step] += 3.0
    after = step_innovations(perturbed, predictor)
    changed = (after.innovations - before.innovations).abs() > 0
    assert not changed[..., :step].any()                   # the past does not see the future
    at_step = changed[..., step]
    assert at_step[:, 1, 2].all() and at_step.sum() == 2   # at the step itself: only the perturbed feature
    if step + 1 < 10:
        assert changed[..., step + 1:].any()               # it is context for the steps after it


def test_gradient_of_the_frozen_innovations_reaches_the_streams_only():
    streams = torch.randn(2, 2, 3, 8, requires_grad=True)
    predictor = trained_like(CausalPredictor(2, 3, hidden=4, receptive_field=2))
    result = innovations(streams, predictor, [0, 1], frozen=True)
    (result.innovations.pow(2).sum() + result.nll).backward()
    assert streams.grad is not None and streams.grad.abs().sum() > 0
    assert all(p.grad is None for p in predictor.parameters())
    innovations(streams.detach(), predictor, [0, 1]).nll.backward()  # not frozen: g's own loss
    assert all(p.grad is not None for p in predictor.parameters())


def hsic(streams):
    return float(mmd_independence(streams, estimator="hsic", clamp=False).estimate)


@pytest.mark.parametrize("seed", [0, 1])
def test_dependence_only_through_the_past_reads_zero_on_the_innovations(seed):
    shared_past = vector_autoregression(0., seed)
    within_step = vector_autoregression(1., seed)
    past_predictor, step_predictor = fitted_predictor(shared_past), fitted_predictor(within_step)
    with torch.no_grad():
        past_innovations = innovations(shared_past, past_predictor).innovations
        step_innovations_ = innovations(within_step, step_predictor).innovations
    # measured: raw 0.115-0.120, its innovations 0.0005-0.0007, within the step 0.05-0.06
    assert hsic(shared_past) > 0.05
    assert abs(hsic(past_innovations)) < 0.02 * hsic(shared_past)
    assert hsic(step_innovations_) > 0.02 > 10 * abs(hsic(past_innovations))
