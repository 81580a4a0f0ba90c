"""Per-codebook usage of integer codes: histograms, entropy, perplexity, used and dead entries.

A collapsed codebook (few entries used, low entropy) is trivially independent of the others, so
dependence figures are always read next to these. Pure torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
import typing as tp

import torch


def check_codes(codes: torch.Tensor, bins: int, min_codebooks: int = 1) -> None:
    """Checks that ``codes`` is an integer ``[B, K, T]`` tensor with values in ``[0, bins)``.

    Raises:
        ValueError: Naming the shape, dtype, K or the offending value.
    """
    if not isinstance(codes, torch.Tensor):
        raise ValueError(f"codes must be a torch.Tensor [B, K, T], got {type(codes).__name__}")
    if codes.dim() != 3:
        raise ValueError(f"codes must be 3-D [B, K, T], got shape {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if codes.shape[1] < min_codebooks:
        raise ValueError(f"codes have K = {codes.shape[1]} codebook(s) (shape {tuple(codes.shape)}); "
                         f"at least {min_codebooks} are needed")
    if codes.numel() == 0:
        raise ValueError(f"codes are empty (shape {tuple(codes.shape)})")
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= bins:
        raise ValueError(f"codes must lie in [0, {bins}) (bins = {bins}), found values in [{low}, {high}]")


def code_histograms(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """Counts of each code per codebook: ``[B, K, T]`` integer codes -> ``[K, bins]``."""
    num_codebooks = codes.shape[1]
    flat = codes.transpose(0, 1).reshape(num_codebooks, -1).long()
    counts = torch.zeros(num_codebooks, bins, dtype=torch.long, device=codes.device)
    return counts.scatter_add_(1, flat, torch.ones_like(flat))


def histogram_stats(counts: torch.Tensor) -> tp.Dict[str, torch.Tensor]:
    """Entropy (bits), perplexity and usage of ``[K, bins]`` code counts, one value per codebook."""
    probs = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)
    entropy = -(probs * torch.log2(probs.clamp(min=1e-300))).sum(dim=1)
    return {
        "entropy": entropy,
        "perplexity": torch.pow(2.0, entropy),
        "usage": (counts > 0).double().mean(dim=1),
    }


@dataclass
class CodebookUsage:
    """Usage of each of K codebooks over N frames (lists indexed by codebook).

    Attributes:
        bins: Entries per codebook; ``log2(bins)`` is the maximum entropy.
        frames: Frames counted per codebook.
        entropy: Plug-in entropy in bits.
        perplexity: ``2 ** entropy``, the effective number of entries used.
        usage: Fraction of entries used at least once.
        dead: Number of entries never used.
    """
    bins: int
    frames: int
    entropy: tp.List[float]
    perplexity: tp.List[float]
    usage: tp.List[float]
    dead: tp.List[int]

    @property
    def max_entropy(self) -> float:
        return math.log2(self.bins)

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return {**asdict(self), "max_entropy": self.max_entropy}


def codebook_usage(codes: torch.Tensor, bins: int) -> CodebookUsage:
    """Per-codebook entropy, perplexity, usage and dead entries of integer codes ``[B, K, T]``."""
    check_codes(codes, bins)
    counts = code_histograms(codes, bins)
    stats = histogram_stats(counts)
    return CodebookUsage(bins=bins, frames=int(codes.shape[0] * codes.shape[2]),
                         entropy=stats["entropy"].tolist(), perplexity=stats["perplexity"].tolist(),
                         usage=stats["usage"].tolist(), dead=(counts == 0).sum(dim=1).tolist())
