"""MusicGen on an EnCodec-MMD codec: `dora run solver=musicgen/mmd`, every pattern, export, offline load."""

import json

import omegaconf
import pytest
import torch

from common_utils import PATTERNS, REPO, TINY_LM, datasource, dora, lm_config, run_new_xp


@pytest.fixture(scope="module")
def lm_xp(tiny_egs, dora_dir, codec_sig):
    run, xp_folder = run_new_xp(["run", *TINY_LM, *datasource(tiny_egs),
                                 f"compression_model_checkpoint=//sig/{codec_sig}",
                                 "codebooks_pattern.modeling=delay"], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    return xp_folder


def test_lm_trains_evaluates_and_generates_from_a_sig(lm_xp):
    history = json.loads((lm_xp / "history.json").read_text())
    assert {"train", "valid", "evaluate", "generate"} <= set(history[0])
    for key in ["ce", "ce_q1", "ce_q4", "ppl_q4"]:
        assert key in history[0]["valid"], key
    assert list((lm_xp / "samples").rglob("*.wav"))


def test_mismatched_pattern_is_rejected_at_start(tiny_egs, dora_dir, codec_sig):
    run = dora(["run", *TINY_LM, *datasource(tiny_egs), f"compression_model_checkpoint=//sig/{codec_sig}",
                "codebooks_pattern.modeling=parallel"], dora_dir)
    assert run.returncode != 0
    assert "implies delays [0, 0, 0, 0]" in run.stderr and "pattern_consistency.allow_mismatch" in run.stderr


def test_export_then_get_pretrained_generates_offline(lm_xp, dora_dir, tmp_path, monkeypatch):
    from audiocraft.data.audio import audio_write
    from audiocraft.models import CompressionModel, MusicGen
    from audiocraft_mmd import train
    from audiocraft_mmd.export import export

    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = export(tmp_path / "export", lm=f"//sig/{lm_xp.name}")
    codec = CompressionModel.get_pretrained(str(folder))
    assert codec.cardinality == 32 and codec.num_codebooks == 4
    model = MusicGen.get_pretrained(str(folder), device="cpu")  # trained on 1 s segments, no conditioner
    model.set_generation_params(duration=0.5)                   # default top_k=250 > 32 entries
    wav = model.generate_unconditional(2)
    assert wav.shape[:2] == (2, 1) and wav.shape[-1] == 8000
    written = audio_write(tmp_path / "sample", wav[0], model.sample_rate, strategy="peak")
    assert written.stat().st_size > 0


def test_audiocraft_eval_solver_api_loads_and_runs_trained_xps(lm_xp, codec_sig, dora_dir, monkeypatch):
    """AudioCraft's documented way to load an XP in a notebook goes through ``audiocraft.train``, which
    this package stands in for: it must accept AudioCraft's arguments and restore the trained weights."""
    from audiocraft.solvers import CompressionSolver, MusicGenSolver
    from audiocraft_mmd import train
    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    codec = CompressionSolver.get_eval_solver_from_sig(codec_sig, device="cpu", autocast=False)
    state = torch.load(dora_dir / "xps" / codec_sig / "checkpoint.th", map_location="cpu", weights_only=True)
    trained = state["best_state"]["model"]
    assert all(torch.equal(value, trained[name]) for name, value in codec.model.state_dict().items())
    assert not codec.model.training
    wav = 0.1 * torch.randn(2, 1, codec.model.sample_rate)
    with torch.no_grad():
        codes, scale = codec.model.encode(wav)
        assert codes.shape[:2] == (2, 4) and codec.model.decode(codes, scale).shape == wav.shape

    solver = MusicGenSolver.get_eval_solver_from_sig(lm_xp.name, device="cpu", autocast=False)
    lm_state = torch.load(lm_xp / "checkpoint.th", map_location="cpu", weights_only=True)["best_state"]["model"]
    assert all(torch.equal(value, lm_state[name]) for name, value in solver.model.state_dict().items())
    from audiocraft.modules.conditioners import ConditioningAttributes
    with torch.no_grad():
        tokens = solver.model.generate(None, [ConditioningAttributes(text={"description": None})], max_gen_len=6)
    assert tokens.shape == (1, 4, 6) and int(tokens.max()) < 32
    with pytest.raises(TypeError):  # AudioCraft's keyword names, not others
        train.get_solver_from_sig(codec_sig, no_such_argument=True)


@pytest.mark.parametrize("modeling", PATTERNS)
def test_tiny_lm_learns_and_generates_with_each_pattern(modeling):
    """A few steps on a deterministic token sequence lower the CE; generation returns [B, K, T]."""
    from audiocraft.models import builders
    from audiocraft.modules.conditioners import ConditioningAttributes

    torch.manual_seed(0)
    lm = builders.get_lm_model(lm_config(modeling))
    tokens = (torch.arange(12)[None, None, :] + torch.arange(4)[None, :, None]).repeat(2, 1, 1) % 16
    optimizer = torch.optim.Adam(lm.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        output = lm.compute_predictions(tokens, [], {})
        logits = output.logits[output.mask]
        loss = torch.nn.functional.cross_entropy(logits, tokens[output.mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses
    lm.eval()
    attributes = [ConditioningAttributes(text={"description": None}) for _ in range(2)]
    generated = lm.generate(None, attributes, max_gen_len=12, use_sampling=True, top_k=250)
    assert generated.shape == (2, 4, 12) and int(generated.max()) < 16


def test_compare_patterns_reuses_finished_xps(lm_xp, tiny_egs, dora_dir, codec_sig, tmp_path, monkeypatch):
    from audiocraft_mmd import compare_patterns, train

    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(dora_dir))
    finished = (lm_xp / "history.json").stat().st_mtime
    shared = [o for o in TINY_LM if o != "solver=musicgen/mmd"] + datasource(tiny_egs)
    cells = compare_patterns.main([
        "--codec", f"//sig/{codec_sig}", "--patterns", "delay,parallel", "--out", str(tmp_path / "cmp"),
        "--gen-duration", "0.5", "--gen-samples", "1", "--", *shared])
    assert [c.pattern for c in cells] == ["delay", "parallel"]
    assert cells[0].sig == lm_xp.name and (lm_xp / "history.json").stat().st_mtime == finished  # reused
    assert [c.consistent for c in cells] == [True, False]
    assert cells[0].steps_per_second == 50 + 3 / 0.5 and cells[1].steps_per_second == 50
    assert len(cells[0].valid_ce_per_codebook) == 4 and cells[0].rtf > 0
    assert cells[0].frame_rate == 50 and cells[0].lm_seed == 2036  # for the price per second, and its seed spread
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| delay |" in table and "Same budget" in table
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 0


def test_genre_lut_conditioner_needs_no_download():
    """conditioner=genre_lut: the LM conditions on a genre string through a LUT (no spaCy, no T5)."""
    from audiocraft.models import builders
    from audiocraft.modules.conditioners import ConditioningAttributes

    lut = omegaconf.OmegaConf.load(REPO / "config" / "conditioner" / "genre_lut.yaml")
    cfg = omegaconf.OmegaConf.merge(lm_config("delay"), lut)
    torch.manual_seed(0)
    lm = builders.get_lm_model(cfg).eval()
    attributes = [ConditioningAttributes(text={"genre": genre}) for genre in ["rock", None]]
    generated = lm.generate(None, attributes, max_gen_len=6, use_sampling=True, top_k=250)
    assert generated.shape == (2, 4, 6)
    # The genre reaches the predictions: same codes, other genre (or none), other logits.
    codes = torch.randint(0, 16, (1, 4, 6), generator=torch.Generator().manual_seed(1))

    def logits(genre):
        with torch.no_grad():
            output = lm.compute_predictions(codes, [ConditioningAttributes(text={"genre": genre})])
        return output.logits[output.mask]  # the delay pattern's valid positions (the others are NaN)
    rock = logits("rock")
    assert rock.numel() > 0 and torch.isfinite(rock).all() and torch.equal(rock, logits("rock"))
    assert not torch.allclose(rock, logits("jazz")) and not torch.allclose(rock, logits(None))
