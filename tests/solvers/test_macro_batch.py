"""The macro-batch schedule: re-encoding with frozen codebooks and gradient checkpointing gives the
streams and encoder gradients of a plain pass, and changes no codebook."""

import pytest
import torch

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.losses import mmd_independence
from audiocraft_mmd.quantization import capture_streams, frozen_codebooks
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config
from audiocraft_mmd.solvers.macro_batch import MacroBatch

from common_utils import mmd_cfg


def buffers(model):
    return {name: value.clone() for name, value in model.named_buffers()}


def plain_streams(model, batches):
    """Streams of a plain (no checkpointing) training-mode pass over each batch, codebooks frozen."""
    streams = []
    with frozen_codebooks(model):
        for audio in batches:
            with capture_streams(model, "quantized") as captured:
                model.quantizer(model.encoder(audio), model.frame_rate)
            streams.append(captured.streams)
    return torch.cat(streams)


@pytest.fixture
def trained_mode_model(tiny_solver):
    model = tiny_solver.model.train()
    with torch.no_grad():
        model(torch.randn(4, 1, 16000))  # k-means initialisation of the codebooks
    return model


def test_frozen_codebooks_do_not_update_and_pass_gradients(trained_mode_model):
    model = trained_mode_model
    before = buffers(model)
    audio = torch.randn(2, 1, 16000)
    with frozen_codebooks(model), capture_streams(model, "quantized") as captured:
        model.quantizer(model.encoder(audio), model.frame_rate)
    assert all(torch.equal(before[name], value) for name, value in model.named_buffers())
    assert all(layer._codebook.training for layer in model.quantizer.vq.layers)  # restored
    captured.streams.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())  # straight-through
    with capture_streams(model, "quantized"):
        model.quantizer(model.encoder(audio), model.frame_rate)
    assert not all(torch.equal(before[name], value) for name, value in model.named_buffers())  # unfrozen: EMA step


def test_macro_batch_matches_a_plain_pass_values_and_gradients(trained_mode_model):
    model = trained_mode_model
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 1, 16000, generator=generator) for _ in range(3)]
    macro = MacroBatch(3)
    assert [macro.add(audio) for audio in batches] == [False, False, True]
    before = buffers(model)

    def encoder_grads(streams):
        model.zero_grad()
        mmd_independence(streams, delays=[0, 1, 2, 3], clamp=False).estimate.backward()
        return [p.grad.clone() for p in model.encoder.parameters()]

    streams = macro.streams(model, "quantized")
    assert streams.shape == (6, 4, 128, 50) and macro.batches == []
    reference = plain_streams(model, batches)
    torch.testing.assert_close(streams, reference)
    for ours, theirs in zip(encoder_grads(streams), encoder_grads(plain_streams(model, batches))):
        torch.testing.assert_close(ours, theirs)
    assert all(torch.equal(before[name], value) for name, value in model.named_buffers())


@pytest.mark.parametrize("overrides, key", [
    (dict(macro_batch=-1), "mmd.macro_batch"),
    (dict(macro_batch=2.5), "mmd.macro_batch"),
    (dict(macro_batch=4, every=2), "mmd.every"),
    (dict(macro_batch=3), "optim.updates_per_epoch=50"),
])
def test_bad_macro_batch_config_is_rejected(overrides, key):
    with pytest.raises(ConfigError, match=key):
        validate_mmd_config(mmd_cfg(**overrides))
    with pytest.raises(ValueError, match="macro-batch size"):
        MacroBatch(0)
