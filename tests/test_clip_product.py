"""The within-clip product of marginals (``product="clip"``, audiocraft_mmd.losses.mmd): the row-weighted
average of per-clip MMD² from a brute-force float64 reference in value and gradient, dependence through
a clip-level cause only read as ~0 (and clearly > 0 when pooled), within-clip dependence read by both,
delays respected, bad options refused."""

import pytest
import torch

from audiocraft_mmd.losses import MMDIndependenceLoss, mmd_independence
from audiocraft_mmd.losses.bank import RowBank
from test_hsic_estimators import brute_force_hsic

BANDWIDTHS = [2.0, 8.0, 32.0]


def per_clip_reference(streams: torch.Tensor, delays, bandwidths) -> torch.Tensor:
    """Mean over clips of the brute-force HSIC of that clip's aligned rows, clip by clip in plain loops."""
    batch, num_codebooks, _, frames = streams.shape
    steps = frames - max(delays)
    values = []
    for b in range(batch):
        rows = torch.stack([torch.stack([streams[b, k, :, t + max(delays) - delays[k]] for k in range(num_codebooks)])
                            for t in range(steps)])  # [T', K, D]
        values.append(brute_force_hsic(rows, bandwidths))
    return sum(values) / batch


def within_clip_dependent(generator, batch=3, frames=9, dim=2, dtype=torch.float64):
    streams = torch.randn(batch, 3, dim, frames, generator=generator, dtype=dtype)
    streams[:, 1] = torch.tanh(2 * streams[:, 0]) + 0.3 * streams[:, 1]
    return streams


@pytest.mark.parametrize("delays", [(0, 0, 0), (0, 1, 2)])
def test_clip_product_matches_per_clip_brute_force(delays):
    streams = within_clip_dependent(torch.Generator().manual_seed(0)).requires_grad_(True)
    options = dict(delays=delays, bandwidths=BANDWIDTHS, bandwidth_scale="none", standardize="none", clamp=False)
    value = mmd_independence(streams, product="clip", **options).estimate
    expected = per_clip_reference(streams, delays, BANDWIDTHS)
    assert abs(expected.item()) > 1e-4  # not a trivial 0 == 0
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)
    (grad,) = torch.autograd.grad(value, streams)
    (expected_grad,) = torch.autograd.grad(expected, streams)
    assert torch.allclose(grad, expected_grad, rtol=1e-8, atol=1e-12)


def clip_cause_streams(generator, batch=12, frames=24, dim=4, shared=1.5):
    """Codebooks independent within each clip; each clip adds one random vector to every codebook."""
    cause = shared * torch.randn(batch, 1, dim, 1, generator=generator)
    return torch.randn(batch, 3, dim, frames, generator=generator) + cause


def test_dependence_through_the_clip_is_left_alone_by_clip_only():
    options = dict(bandwidths=[0.5, 1.0, 2.0], clamp=False)
    pooled, clip = [], []
    for seed in range(4):
        streams = clip_cause_streams(torch.Generator().manual_seed(seed))
        pooled.append(mmd_independence(streams, product="pooled", **options).estimate.item())
        clip.append(mmd_independence(streams, product="clip", **options).estimate.item())
    pooled_mean, clip_mean = sum(pooled) / 4, sum(clip) / 4
    assert min(pooled) > 0.01                      # clearly dependent when clips are pooled
    assert abs(clip_mean) < 0.05 * pooled_mean     # ~0 given the clip


def test_within_clip_dependence_is_read_by_both():
    streams = within_clip_dependent(torch.Generator().manual_seed(3), batch=6, frames=24, dim=4, dtype=torch.float32)
    for product in ("pooled", "clip"):
        assert mmd_independence(streams, product=product, clamp=False).estimate.item() > 0.01


def test_clip_product_respects_delays():
    generator = torch.Generator().manual_seed(4)
    streams = torch.randn(6, 2, 4, 25, generator=generator)
    # The delay pattern's step pairs codebook 0 at frame s with codebook 1 at s - 1.
    streams[:, 1, :, :-1] = torch.tanh(2 * streams[:, 0, :, 1:]) + 0.3 * streams[:, 1, :, :-1]
    delay = mmd_independence(streams, delays=[0, 1], product="clip", clamp=False).estimate.item()
    parallel = mmd_independence(streams, delays=[0, 0], product="clip", clamp=False).estimate.item()
    assert delay > 0.01 and abs(parallel) < 0.2 * delay


def test_bad_product_and_incompatible_options_are_refused():
    streams = torch.randn(2, 2, 3, 5)
    with pytest.raises(ValueError, match="Unknown product='frame'"):
        mmd_independence(streams, product="frame")
    with pytest.raises(ValueError, match="Unknown product='frame'"):
        MMDIndependenceLoss(product="frame")
    with pytest.raises(ValueError, match="2 per clip with product='clip'"):
        mmd_independence(torch.randn(4, 2, 3, 2), delays=[0, 1], product="clip")
    with pytest.raises(ValueError, match="a row bank holds pooled kernel sums"):
        mmd_independence(streams, product="clip", bank=RowBank(2))
