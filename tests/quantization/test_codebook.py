"""ConsistentEMACodebook keeps `embed == embed_avg / cluster_size` where AudioCraft's class breaks it."""

import torch

from audiocraft.quantization.core_vq import EuclideanCodebook
from audiocraft_mmd.quantization.codebook import ConsistentEMACodebook, use_consistent_codebooks


def mixture(generator, num_points=600, centres=32, dim=8):
    means = 4 * torch.randn(centres, dim, generator=generator)
    labels = torch.randint(0, centres, (num_points,), generator=generator)
    return means[labels] + 0.1 * torch.randn(num_points, dim, generator=generator)


def train_codebook(cls, steps=20, threshold=2):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codebook = cls(dim=8, codebook_size=64, kmeans_init=True, kmeans_iters=10, decay=0.99,
                   threshold_ema_dead_code=threshold)
    codebook.train()
    data = mixture(generator)
    for _ in range(steps):
        codebook(data[torch.randperm(len(data), generator=generator)[:300]])
    return codebook, data


def test_initialisation_keeps_codes_where_kmeans_put_them():
    codebook, data = train_codebook(ConsistentEMACodebook, steps=1, threshold=0)
    # one EMA step on data from the same mixture barely moves k-means centroids
    counts = torch.bincount(codebook.quantize(data), minlength=64)
    used = counts > 0
    assert used.sum() >= 48  # measured 63 of 64 (AudioCraft's class: 29)
    average = codebook.embed_avg / codebook.cluster_size[:, None]
    torch.testing.assert_close(codebook.embed[used], average[used], rtol=0.05, atol=0.05)


def test_audiocraft_codebook_shrinks_codes_after_initialisation():
    """The defect the subclass fixes (if AudioCraft fixes it, this test tells us to drop the fix)."""
    fixed, data = train_codebook(ConsistentEMACodebook, steps=1, threshold=0)
    original, _ = train_codebook(EuclideanCodebook, steps=1, threshold=0)
    assert original.embed.norm(dim=1).median() < 0.7 * fixed.embed.norm(dim=1).median()


def test_usage_stays_high_with_expiry():
    fixed, data = train_codebook(ConsistentEMACodebook, steps=30)
    original, _ = train_codebook(EuclideanCodebook, steps=30)

    def used(codebook):
        return torch.unique(codebook.quantize(data)).numel()

    assert used(fixed) >= 48  # measured 61 of 64
    assert used(original) < used(fixed)  # measured 28
    # expired codes were really replaced: every code's running count is at least the threshold's decay
    assert (fixed.cluster_size > 0.5).all()


def test_switch_keeps_state_dict_layout():
    from audiocraft.models.builders import get_debug_compression_model
    model = get_debug_compression_model(sample_rate=16000)
    keys = set(model.state_dict())
    use_consistent_codebooks(model)
    assert all(type(layer._codebook) is ConsistentEMACodebook for layer in model.quantizer.vq.layers)
    assert set(model.state_dict()) == keys
    plain = get_debug_compression_model(sample_rate=16000)
    plain.load_state_dict(model.state_dict())  # AudioCraft's own class loads it
