"""Per-codebook streams captured from AudioCraft's RVQ, and where the loss's gradient goes."""

import pytest
import torch

from audiocraft.models.builders import get_debug_compression_model
from audiocraft_mmd.losses import MMDIndependenceLoss
from audiocraft_mmd.quantization import capture_streams


@pytest.fixture
def model():
    torch.manual_seed(0)
    model = get_debug_compression_model(sample_rate=16000)  # 4 codebooks, latent 32, 25 Hz
    model.train()
    model(torch.randn(4, 1, 16000))  # k-means initialisation of the codebooks
    return model


def test_streams_are_the_stage_quantized_vectors(model):
    model.eval()
    audio = torch.randn(2, 1, 16000)
    with torch.no_grad(), capture_streams(model) as captured:
        qres = model(audio)
    assert captured.streams.shape == (2, 4, 32, 25)
    assert torch.equal(captured.codes, qres.codes)
    for k, layer in enumerate(model.quantizer.vq.layers):
        torch.testing.assert_close(captured.streams[:, k], layer.decode(qres.codes[:, k]))
    # the stages add up to the quantized latent the decoder receives
    torch.testing.assert_close(captured.streams.sum(dim=1), model.quantizer.decode(qres.codes))


def test_residual_source_is_what_remains_after_each_stage(model):
    model.eval()
    audio = torch.randn(2, 1, 16000)
    with torch.no_grad(), capture_streams(model, source="residual") as captured:
        qres = model(audio)
    quantized = torch.stack([layer.decode(qres.codes[:, k]) for k, layer in enumerate(model.quantizer.vq.layers)], 1)
    expected_last = captured.latent - quantized.sum(dim=1)
    torch.testing.assert_close(captured.streams[:, -1], expected_last, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("source", ["quantized", "residual"])
def test_gradient_reaches_encoder_only(model, source):
    audio = torch.randn(4, 1, 16000)
    codebooks_before = [layer._codebook.embed.clone() for layer in model.quantizer.vq.layers]
    with capture_streams(model, source=source) as captured:
        model(audio)
    codebooks_after_forward = [layer._codebook.embed.clone() for layer in model.quantizer.vq.layers]
    loss = MMDIndependenceLoss(delays=[0, 1, 2, 3], clamp=False)(captured.streams)
    model.zero_grad()
    loss.backward()
    encoder_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in encoder_grads)
    assert sum(g.abs().sum().item() for g in encoder_grads) > 0
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.quantizer.parameters())
    # codebooks are EMA buffers updated by the forward pass only, never by this loss
    for layer, after in zip(model.quantizer.vq.layers, codebooks_after_forward):
        assert not layer._codebook.embed.requires_grad
        assert torch.equal(layer._codebook.embed, after)
    assert any(not torch.equal(b, a) for b, a in zip(codebooks_before, codebooks_after_forward))


def test_capture_refuses_models_without_rvq():
    with pytest.raises(TypeError, match="residual vector quantizer"):
        with capture_streams(torch.nn.Linear(2, 2)):
            pass


def test_unknown_source_is_rejected(model):
    with pytest.raises(ValueError, match="Unknown stream source 'nope'"):
        with capture_streams(model, source="nope"):
            pass
