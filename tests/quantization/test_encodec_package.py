"""The standalone `encodec` package's EncodecModel as a stream source: shapes, values, gradients,
bandwidths, fine-tuning with the loss and the dependence command (random weights, no download)."""

import json

import pytest
import torch

from encodec import EncodecModel
from encodec.modules import SEANetDecoder, SEANetEncoder
from encodec.quantization import ResidualVectorQuantizer

from audiocraft_mmd.losses import MMDIndependenceLoss, mmd_independence
from audiocraft_mmd.quantization import adapter_for, capture_streams
from audiocraft_mmd.quantization import encodec_package
from audiocraft_mmd.quantization.encodec_package import EncodecPackageAdapter, load_encodec_package

SAMPLE_RATE = 8000


def small_model(n_q: int = 4) -> EncodecModel:
    """A small randomly initialised package model: 8 kHz, 100 Hz frames, latent 32, n_q x 64 entries."""
    torch.manual_seed(0)
    encoder = SEANetEncoder(channels=1, dimension=32, n_filters=4, ratios=[5, 4, 2, 2], lstm=0)
    decoder = SEANetDecoder(channels=1, dimension=32, n_filters=4, ratios=[5, 4, 2, 2], lstm=0)
    quantizer = ResidualVectorQuantizer(dimension=32, n_q=n_q, bins=64, decay=0.9, kmeans_iters=5)
    bandwidth = n_q * 6 * 100 / 1000  # 6 bits per code, 100 frames per second
    return EncodecModel(encoder, decoder, quantizer, target_bandwidths=[bandwidth / 2, bandwidth],
                        sample_rate=SAMPLE_RATE, channels=1)


def audio(batch: int = 4, seconds: float = 0.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = torch.rand(batch, 1, 1, generator=generator) * 300 + 100
    return 0.5 * torch.sin(2 * torch.pi * f0 * t) + 0.05 * torch.randn(batch, 1, t.numel(), generator=generator)


def test_streams_and_codes_match_the_package_codes():
    model = small_model()
    assert isinstance(adapter_for(model), EncodecPackageAdapter)
    model.train()
    adapter_for(model).quantize(audio())  # k-means initialisation of the codebooks
    model.eval()
    x = audio()
    with torch.no_grad(), capture_streams(model) as captured:
        adapter_for(model).quantize(x)
    assert captured.streams.shape == (4, 4, 32, 50) and captured.codes.shape == (4, 4, 50)
    ((codes, _),) = model.encode(x)  # the package's own inference path
    assert torch.equal(captured.codes, codes)
    for k, layer in enumerate(model.quantizer.vq.layers):
        torch.testing.assert_close(captured.streams[:, k], layer.decode(codes[:, k]))
    assert adapter_for(model).num_codebooks == 4 and adapter_for(model).bins == 64


def test_lower_bandwidth_captures_the_active_codebooks():
    model = small_model().eval()
    model.set_target_bandwidth(1.2)  # 2 of the 4 codebooks
    assert adapter_for(model).num_codebooks == 2
    with torch.no_grad(), capture_streams(model) as captured:
        adapter_for(model).quantize(audio())
    assert captured.streams.shape[1] == 2 and captured.codes.shape[1] == 2


@pytest.mark.parametrize("source", ["quantized", "residual"])
def test_every_stage_stream_reaches_the_encoder(source):
    """The package's RVQ cuts the gradient of stages > 1 from the encoder; the adapter's streams do not."""
    model = small_model().train()
    with capture_streams(model, source=source) as captured:
        adapter_for(model).reconstruct(audio())
    for k in range(4):
        (grad,) = torch.autograd.grad(captured.streams[:, k].pow(2).sum(), captured.latent, retain_graph=True)
        assert grad.abs().sum() > 0, k
    # what the layer itself returned for stage 2 has no path to the latent: the reason for the adapter
    model.zero_grad()
    loss = MMDIndependenceLoss(clamp=False)(captured.streams)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters() if p.dim() > 1)
    assert all(p.grad is None for p in model.decoder.parameters())


def fine_tune(weight: float, steps: int = 15):
    """``steps`` Adam steps on the encoder of a fresh small model with reconstruction + commitment +
    ``weight * L_inde`` on one batch; the loss's statistic on that batch (eval mode) before and after."""
    model = small_model().train()
    adapter = adapter_for(model)
    x = audio(batch=8)
    with torch.no_grad():
        adapter.quantize(x)  # k-means initialisation
    loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3], clamp=False)

    def statistic():
        model.eval()
        with torch.no_grad(), capture_streams(model) as captured:
            adapter.quantize(x)
        model.train()
        return mmd_independence(captured.streams, delays=[0, 1, 2, 3], clamp=False).estimate.item()

    before = statistic()
    optimizer = torch.optim.Adam(model.encoder.parameters(), lr=1e-3)
    for _ in range(steps):
        with capture_streams(model) as captured:
            reconstruction, penalty = adapter.reconstruct(x)
        loss = (reconstruction - x).abs().mean() + penalty + weight * loss_fn(captured.streams)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, statistic()


def test_fine_tuning_with_the_loss_lowers_it():
    """The same random model fine-tuned with and without the loss: only the loss brings the
    statistic down by orders of magnitude."""
    before, with_loss = fine_tune(weight=1000.0)
    _, without = fine_tune(weight=0.0)
    print(f"MMD statistic before {before:.3g}; after 15 steps with the loss {with_loss:.3g}, without {without:.3g}")
    assert before > 0
    assert with_loss < 0.1 * before and with_loss < 0.1 * without


def test_references_build_models_without_download(tmp_path):
    model = load_encodec_package("encodec:24khz:random")
    assert adapter_for(model).sample_rate == 24000 and adapter_for(model).num_codebooks == 32
    path = tmp_path / "state.th"
    torch.save(small_model().state_dict(), path)
    with pytest.raises(RuntimeError):  # a state dict of another architecture does not load silently
        load_encodec_package(f"encodec:24khz:{path}")
    assert adapter_for(load_encodec_package("encodec:24khz:random", bandwidth=6.0)).num_codebooks == 8
    with pytest.raises(ValueError, match="bandwidth"):
        load_encodec_package("encodec:24khz:random", bandwidth=5.0)
    for bad, match in [("encodec:16khz", "unknown encodec package model"),
                       (f"encodec:24khz:{tmp_path / 'none'}", "neither a checkpoint directory")]:
        with pytest.raises(ValueError, match=match):
            load_encodec_package(bad)


def test_dependence_command_measures_the_package_model(tiny_egs, tmp_path, monkeypatch):
    """The command end to end on an `encodec:` reference, here resolved to the small model (the
    24 kHz model's k-means initialisation of 1024-entry codebooks takes about 40 s on a CPU)."""
    from audiocraft_mmd import dependence

    model = small_model()
    model.train()
    with torch.no_grad():
        adapter_for(model).quantize(audio())  # k-means initialisation
    requested = []

    def load(reference, bandwidth=None):
        requested.append((reference, bandwidth))
        if bandwidth is not None:
            model.set_target_bandwidth(bandwidth)
        return model

    monkeypatch.setattr(encodec_package, "load_encodec_package", load)  # read by utils.checkpoints at load time
    out = tmp_path / "report"
    code = dependence.main(["--checkpoint", "encodec:24khz:random", "--bandwidth", "1.2",
                            "--data", str(tiny_egs / "evaluate"), "--out", str(out), "--segment", "1",
                            "--max-frames", "800", "--permutations", "5", "--ci-blocks", "0",
                            "--kernel-rows", "64", "--batch-size", "4"])
    assert code == 0 and requested == [("encodec:24khz:random", 1.2)]
    (codec,) = json.loads((out / "report.json").read_text())["codecs"]
    assert codec["checkpoint"] == "encodec:24khz:random"
    # 1.2 kbps = 2 codebooks of 6 bits at 100 Hz
    assert codec["num_codebooks"] == 2 and codec["bins"] == 64 and codec["sample_rate"] == SAMPLE_RATE
    assert codec["frame_rate"] == 100 and len(codec["usage"]["entropy"]) == 2
    assert set(codec["alignments"]) == {"parallel", "delay"}
    assert dependence.main(["--checkpoint", "//sig/none", "--bandwidth", "3", "--data", str(tiny_egs / "evaluate"),
                            "--out", str(tmp_path / "other")]) == 2  # --bandwidth is for encodec: models only
