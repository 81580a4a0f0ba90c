"""The soft-assignment MI penalty (audiocraft_mmd.losses.soft_mi): the hard codes' plug-in MI in the
low-temperature limit, ~0 for independent codes once bias-corrected (and clearly biased without), clip-
level dependence left alone by the within-clip null, finite gradients on silence and collapsed codebooks,
gradient to the inputs only, bad options refused."""

import pytest
import torch

from audiocraft_mmd.losses.soft_mi import SoftMutualInformationLoss, soft_mutual_information
from audiocraft_mmd.metrics import pairwise_mutual_information

BINS, DIM = 8, 4


def inputs_of(codes: torch.Tensor, codebooks: torch.Tensor, noise: float, generator) -> torch.Tensor:
    """Stage inputs ``[B, K, D, T]`` near the entries ``codes`` ``[B, K, T]`` name."""
    vectors = torch.stack([codebooks[k][codes[:, k]] for k in range(codes.shape[1])], dim=1)  # [B, K, T, D]
    return vectors.transpose(2, 3) + noise * torch.randn(vectors.transpose(2, 3).shape, generator=generator)


def dependent_codes(generator, clips=8, steps=50):
    first = torch.randint(0, BINS, (clips, steps), generator=generator)
    copy = torch.where(torch.rand(clips, steps, generator=generator) < 0.6, first,
                       torch.randint(0, BINS, (clips, steps), generator=generator))
    return torch.stack([first, copy, torch.randint(0, BINS, (clips, steps), generator=generator)], dim=1)


def test_low_temperature_limit_is_the_hard_codes_plugin_mi():
    generator = torch.Generator().manual_seed(0)
    codebooks = 3 * torch.randn(3, BINS, DIM, generator=generator)
    codes = dependent_codes(generator)
    inputs = inputs_of(codes, codebooks, 0.05, generator)
    soft = soft_mutual_information(inputs, codebooks, temperature=1e-3, correct=False, clamp=False).estimate
    hard = pairwise_mutual_information(codes, BINS, entropy_estimator="plugin", shifts=0).mean("mi_plugin")
    assert hard > 0.2
    assert soft.item() == pytest.approx(hard, abs=1e-5)


def test_independent_codes_read_zero_once_corrected():
    corrected, plain = [], []
    for seed in range(6):
        generator = torch.Generator().manual_seed(seed)
        codebooks = 3 * torch.randn(3, BINS, DIM, generator=generator)
        inputs = inputs_of(torch.randint(0, BINS, (4, 3, 40), generator=generator), codebooks, 0.5, generator)
        options = dict(temperature=1., clamp=False, generator=torch.Generator().manual_seed(seed))
        corrected.append(soft_mutual_information(inputs, codebooks, **options).estimate.item())
        plain.append(soft_mutual_information(inputs, codebooks, correct=False, **options).estimate.item())
    bias = sum(plain) / len(plain)
    assert bias > 0.02                                    # the plug-in alone reads dependence that is not there
    assert abs(sum(corrected) / len(corrected)) < 0.25 * bias


def test_clip_null_leaves_clip_level_dependence_alone():
    generator = torch.Generator().manual_seed(1)
    codebooks = 3 * torch.randn(2, BINS, DIM, generator=generator)
    z = torch.randint(0, BINS, (32, 1, 1), generator=generator).expand(32, 2, 60)
    codes = torch.where(torch.rand(32, 2, 60, generator=generator) < 0.7, z,
                        torch.randint(0, BINS, (32, 2, 60), generator=generator))
    inputs = inputs_of(codes, codebooks, 0.05, generator)
    options = dict(temperature=1e-2, clamp=False, generator=torch.Generator().manual_seed(0))
    pooled = soft_mutual_information(inputs, codebooks, product="pooled", **options).estimate.item()
    clip = soft_mutual_information(inputs, codebooks, product="clip", **options).estimate.item()
    assert pooled > 0.3
    assert abs(clip) < 0.1 * pooled


@pytest.mark.parametrize("case", ["silence", "collapsed codebooks"])
def test_gradients_are_finite_and_reach_the_inputs_only(case):
    generator = torch.Generator().manual_seed(2)
    codebooks = torch.randn(3, BINS, DIM, generator=generator)
    inputs = torch.randn(2, 3, DIM, 10, generator=generator)
    if case == "silence":
        inputs = torch.zeros_like(inputs)
    else:
        codebooks = codebooks[:, :1].expand_as(codebooks).clone()
    inputs.requires_grad_(True)
    codebooks.requires_grad_(True)
    loss = SoftMutualInformationLoss(delays=[0, 1, 2])
    loss(inputs, codebooks, generator=torch.Generator().manual_seed(0))  # sets loss.last_result
    value_unclamped = loss.last_result.estimate
    (grad,) = torch.autograd.grad(value_unclamped, inputs, allow_unused=False)
    assert torch.isfinite(value_unclamped) and torch.isfinite(grad).all()
    assert codebooks.grad is None


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="temperature must be a finite float > 0"):
        SoftMutualInformationLoss(temperature=0.)
    with pytest.raises(ValueError, match="Unknown product='frame'"):
        SoftMutualInformationLoss(product="frame")
    with pytest.raises(ValueError, match="do not match"):
        soft_mutual_information(torch.randn(2, 3, 4, 5), torch.randn(2, BINS, 4))
