"""The within-clip and within-chunk products of marginals (``product="clip"``, ``"chunk"``,
audiocraft_mmd.losses.mmd): the row-weighted average of per-clip (per-chunk) MMD² from a brute-force
float64 reference in value and gradient, dependence through a clip-level (chunk-level) cause only read
as ~0 (and clearly > 0 when pooled, or per clip), within-step dependence read by all, delays respected,
bad options refused."""

import pytest
import torch

from audiocraft_mmd.losses import MMDIndependenceLoss, mmd_independence
from audiocraft_mmd.losses.bank import RowBank
from audiocraft_mmd.losses.soft_mi import SoftMutualInformationLoss

from common_utils import brute_force_hsic

BANDWIDTHS = [2.0, 8.0, 32.0]


def per_clip_reference(streams: torch.Tensor, delays, bandwidths, chunk=None) -> torch.Tensor:
    """Mean over clips (or over each clip's full chunks of ``chunk`` aligned steps) of the brute-force HSIC
    of their aligned rows, in plain loops."""
    batch, num_codebooks, _, frames = streams.shape
    steps = frames - max(delays)
    starts = range(0, steps - (chunk or steps) + 1, chunk or steps)
    values = []
    for b in range(batch):
        for start in starts:
            rows = torch.stack([torch.stack([streams[b, k, :, t + max(delays) - delays[k]]
                                             for k in range(num_codebooks)])
                                for t in range(start, start + (chunk or steps))])  # [T' or chunk, K, D]
            values.append(brute_force_hsic(rows, bandwidths))
    return sum(values) / len(values)


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


@pytest.mark.parametrize("delays", [(0, 0, 0), (0, 1, 2)])
def test_chunk_product_matches_per_chunk_brute_force(delays):
    """Chunks of 3 aligned steps: 11 - 2 = 9 steps give 3 chunks per clip, 11 give 3 and 2 rows left out."""
    streams = within_clip_dependent(torch.Generator().manual_seed(1), frames=11).requires_grad_(True)
    options = dict(delays=delays, bandwidths=BANDWIDTHS, bandwidth_scale="none", standardize="none", clamp=False)
    value = mmd_independence(streams, product="chunk", chunk_frames=3, **options).estimate
    expected = per_clip_reference(streams, delays, BANDWIDTHS, chunk=3)
    assert abs(expected.item()) > 1e-4
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)
    (grad,) = torch.autograd.grad(value, streams)
    (expected_grad,) = torch.autograd.grad(expected, streams)
    assert torch.allclose(grad, expected_grad, rtol=1e-8, atol=1e-12)
    assert not torch.equal(value, mmd_independence(streams, product="clip", **options).estimate)


def test_dependence_through_the_local_context_is_left_alone_by_chunk_only():
    """A cause shared by every codebook that changes every 6 frames: dependent given the clip, not given
    the chunk of 6 frames it is constant over."""
    options = dict(bandwidths=[0.5, 1.0, 2.0], clamp=False)
    clip, chunk = [], []
    for seed in range(4):
        generator = torch.Generator().manual_seed(seed)
        cause = 1.5 * torch.randn(12, 1, 4, 4, generator=generator).repeat_interleave(6, dim=-1)  # [B, 1, D, 24]
        streams = torch.randn(12, 3, 4, 24, generator=generator) + cause
        clip.append(mmd_independence(streams, product="clip", **options).estimate.item())
        chunk.append(mmd_independence(streams, product="chunk", chunk_frames=6, **options).estimate.item())
    assert min(clip) > 0.01
    assert abs(sum(chunk)) < 0.05 * sum(clip)


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
    for product in ("pooled", "clip", "chunk"):
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
    with pytest.raises(ValueError, match="chunk_frames=6 per clip with product='chunk'"):
        mmd_independence(streams, product="chunk", chunk_frames=6)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_frames must be an integer >= 2"):
            MMDIndependenceLoss(product="chunk", chunk_frames=bad)
    with pytest.raises(ValueError, match="Unknown product='chunk'"):
        SoftMutualInformationLoss(product="chunk")
