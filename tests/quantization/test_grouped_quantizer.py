"""The grouped (product) quantizer: parallel streams over slices of the latent, built by AudioCraft's
builder from `model=encodec/small_grouped`, trained by the same solver (with the adversary too)."""

import omegaconf
import pytest
import torch

from audiocraft.models import builders
from audiocraft_mmd import train
from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.losses import MMDIndependenceLoss
from audiocraft_mmd.quantization import capture_streams
from audiocraft_mmd.quantization.codebook import ConsistentEMACodebook
from audiocraft_mmd.quantization.grouped import GroupedVectorQuantizer

from common_utils import TINY_RUN, datasource, dora

GROUPED = ["solver=compression/mmd", "model=encodec/small_grouped"]


def grouped_cfg(*overrides):
    cfg = train.main.get_xp([*GROUPED, *overrides]).cfg
    cfg.device = "cpu"
    return cfg


def test_quantizer_codes_each_slice_with_its_codebook():
    torch.manual_seed(0)
    quantizer = GroupedVectorQuantizer(dimension=16, n_q=4, bins=8, kmeans_iters=5).train()
    x = torch.randn(3, 16, 20)
    quantizer(x, 50)  # k-means initialisation
    quantizer.eval()
    result = quantizer(x, 50)
    assert result.codes.shape == (3, 4, 20) and result.x.shape == x.shape
    assert result.bandwidth.item() == pytest.approx(4 * 3 * 50 / 1000)
    assert torch.equal(quantizer.encode(x), result.codes)
    torch.testing.assert_close(quantizer.decode(result.codes), result.x)
    for k, layer in enumerate(quantizer.codebook_layers):  # codebook k sees channels 4k..4k+3 only
        torch.testing.assert_close(result.x[:, 4 * k:4 * (k + 1)], layer.decode(layer.encode(x[:, 4 * k:4 * (k + 1)])))
    assert quantizer.total_codebooks == quantizer.num_codebooks == 4
    with pytest.raises(ValueError, match="all of its 4 codebooks"):
        quantizer.set_num_codebooks(2)
    with pytest.raises(ValueError, match="must divide the latent dimension 16"):
        GroupedVectorQuantizer(dimension=16, n_q=3)


def test_builder_makes_an_encodec_with_parallel_streams():
    model = builders.get_compression_model(grouped_cfg())
    assert isinstance(model.quantizer, GroupedVectorQuantizer) and model.quantizer.stream_dimension == 32
    model.train()
    audio = torch.randn(2, 1, 16000)
    with torch.no_grad():
        model(audio)  # k-means initialisation
    model.eval()
    with torch.no_grad(), capture_streams(model) as captured:
        qres = model(audio)
    assert captured.streams.shape == (2, 4, 32, 50) and torch.equal(captured.codes, qres.codes)
    # parallel streams: side by side they are the quantized latent (an RVQ's stages would add up)
    torch.testing.assert_close(captured.streams.flatten(1, 2), model.quantizer.decode(qres.codes))
    model.train()
    with capture_streams(model) as captured:
        model(audio)
    model.zero_grad()
    MMDIndependenceLoss(delays=[0, 1, 2, 3], clamp=False)(captured.streams).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    rebuilt = builders.get_compression_model(grouped_cfg())
    rebuilt.load_state_dict(model.state_dict())  # checkpoints hold the same modules


@pytest.mark.parametrize("overrides, key", [
    (["grouped.n_q=3"], "grouped: n_q=3 must divide"),
    (["grouped.unknown=1"], "grouped: .*unknown"),
])
def test_bad_grouped_config_is_rejected(overrides, key):
    cfg = grouped_cfg(*[f"+{o}" if "unknown" in o else o for o in overrides])
    with pytest.raises(ConfigError, match=key):
        builders.get_compression_model(cfg)


def test_missing_section_is_named():
    cfg = grouped_cfg()
    with omegaconf.open_dict(cfg):
        del cfg["grouped"]
    with pytest.raises(ConfigError, match="`grouped:` config section"):
        builders.get_compression_model(cfg)


def test_solver_trains_the_grouped_codec_with_the_loss_and_the_adversary(make_tiny_solver):
    solver = make_tiny_solver("model=encodec/small_grouped", "mmd.adversary.weight=1")
    assert all(isinstance(layer._codebook, ConsistentEMACodebook) for layer in solver.model.quantizer.codebook_layers)
    assert solver.mmd_adversary.critic.maps[0][0].in_features == 32  # a critic on 32-dim group streams
    batch = next(iter(solver.dataloaders["train"]))
    steps = []
    solver.run_stage("train", lambda: steps.extend(solver.run_step(idx, batch, {}) for idx in range(2)))
    for metrics in steps:
        assert metrics["mmd_codebooks"] == 4 and metrics["mmd_rows"] == 4 * (50 - 3)
        for key in ["mmd", "mmd_loss", "mmd_adv", "mmd_grad_ratio", "usage_q3", "g_loss"]:
            assert torch.isfinite(torch.as_tensor(metrics[key])), key
        assert metrics["nonfinite_step"] == 0.0


def test_dora_run_of_the_grouped_codec_with_the_adversary(tiny_egs, tmp_path, monkeypatch):
    """`dora run` end to end: train, valid, evaluate; the checkpoint (critic and its optimizer
    included) loads weights-only on resume, and AudioCraft's loader rebuilds the grouped codec."""
    import json
    from audiocraft.solvers.compression import CompressionSolver

    overrides = [*GROUPED, "mmd.adversary.weight=1", *TINY_RUN, *datasource(tiny_egs)]
    run = dora(["run", *overrides], tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    (xp_folder,) = (tmp_path / "xps").iterdir()
    history = json.loads((xp_folder / "history.json").read_text())
    train_metrics, evaluate = history[1]["train"], history[1]["evaluate"]
    for key in ["mmd", "mmd_adv", "mmd_adv_critic", "mmd_loss", "usage_q3"]:
        assert key in train_metrics, key
    for key in ["entropy_q3", "mmd_estimate", "mi_delay"]:
        assert key in evaluate, key
    state = torch.load(xp_folder / "checkpoint.th", map_location="cpu", weights_only=True)
    assert set(state["mmd_adversary"]) == {"critic", "optimizer"}
    again = dora(["run", *overrides], tmp_path)  # resumes from the checkpoint: nothing left to train
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Loading existing checkpoint" in again.stdout + again.stderr
    monkeypatch.setattr(train.main.dora, "dir", tmp_path)
    model = CompressionSolver.model_from_checkpoint(f"//sig/{xp_folder.name}")
    assert isinstance(model.quantizer, GroupedVectorQuantizer)
    codes, _ = model.encode(torch.zeros(1, 1, 16000))
    assert codes.shape == (1, 4, 50)
