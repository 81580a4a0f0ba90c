"""The depth LM (codebooks_pattern.modeling=depth) against a slow reference, its mask, steps, save/load, dora run."""

import json
import math

import omegaconf
import pytest
import torch
from torch.nn import functional as F

from common_utils import REPO, TINY_LM, datasource, lm_config, run_new_xp

K, CARD = 4, 16


def depth_config(conditioned: bool = False, num_layers: int = 2, context: str = "first") -> omegaconf.DictConfig:
    cfg = lm_config("depth")
    cfg.codebooks_pattern.depth = {"num_layers": num_layers, "dim": 16, "num_heads": 2, "hidden_scale": 2,
                                   "context": context}
    if conditioned:  # a genre LUT prepended to the input, with classifier-free guidance
        lut = omegaconf.OmegaConf.load(REPO / "config" / "conditioner" / "genre_lut.yaml")
        cfg = omegaconf.OmegaConf.merge(cfg, lut)
    return cfg


def build(cfg, seed: int = 0):
    from audiocraft.models import builders
    torch.manual_seed(seed)
    return builders.get_lm_model(cfg).eval()


# ---- slow reference: one frame at a time, one depth position at a time, plain attention ----

def reference_depth_logits(lm, inputs):
    """Logits [N, card] of the last of depth positions 0..k from their inputs [N, k+1, D], no cache."""
    x = inputs
    for layer in lm.depth_layers:
        N, L, D = x.shape
        H = layer.num_heads
        h = F.layer_norm(x, (D,), layer.norm_attn.weight, layer.norm_attn.bias, layer.norm_attn.eps)
        q, k, v = (h @ layer.qkv.weight.T).split(D, dim=-1)
        heads = []
        for head in range(H):
            cols = slice(head * D // H, (head + 1) * D // H)
            rows = []
            for i in range(L):  # position i attends to positions 0..i
                scores = torch.stack([(q[:, i, cols] * k[:, j, cols]).sum(-1) for j in range(i + 1)], -1)
                weights = torch.softmax(scores / math.sqrt(D // H), dim=-1)  # [N, i+1]
                rows.append(sum(weights[:, j, None] * v[:, j, cols] for j in range(i + 1)))
            heads.append(torch.stack(rows, 1))
        x = x + torch.cat(heads, -1) @ layer.out.weight.T
        h = F.layer_norm(x, (D,), layer.norm_ff.weight, layer.norm_ff.bias, layer.norm_ff.eps)
        x = x + F.linear(F.gelu(F.linear(h, layer.ff_in.weight, layer.ff_in.bias), approximate="tanh"),
                         layer.ff_out.weight, layer.ff_out.bias)
    x = F.layer_norm(x[:, -1], (lm.depth_dim,), lm.depth_norm.weight, lm.depth_norm.bias, lm.depth_norm.eps)
    head = lm.linears[inputs.shape[1] - 1]
    return x @ head.weight.T + head.bias


def reference_state(lm, frames, condition_tensors):
    """Temporal state predicting the next frame, from the frames so far [N, K, t] (no cache)."""
    start = torch.full((frames.shape[0], K, 1), lm.special_token_id, dtype=torch.long)
    return lm.temporal_states(torch.cat([start, frames], -1), [], condition_tensors)[:, -1]


def depth_inputs(lm, state, frame_codes):
    """Inputs of depth positions 0..len(frame_codes): projected state, then embedded codes (each plus its
    own projection of the state with context=every)."""
    inputs = [state @ lm.depth_in.weight.T + lm.depth_in.bias + lm.depth_pos[0]]
    for j, code in enumerate(frame_codes):
        context = state @ lm.depth_ctx[j].weight.T + lm.depth_ctx[j].bias if len(lm.depth_ctx) else 0.
        inputs.append(lm.depth_emb[j].weight[code] + lm.depth_pos[j + 1] + context)
    return torch.stack(inputs, 1)


@torch.no_grad()
def reference_logits(lm, codes, condition_tensors):
    B, _, T = codes.shape
    logits = torch.zeros(B, K, T, CARD)
    for t in range(T):
        state = reference_state(lm, codes[..., :t], condition_tensors)
        for k in range(K):
            logits[:, k, t] = reference_depth_logits(lm, depth_inputs(lm, state, [codes[:, j, t] for j in range(k)]))
    return logits


@torch.no_grad()
def reference_generate(lm, attributes, frames, prompt=None, cfg_coef=None, **sampling):
    """Sampling frame by frame, code by code, with the same random draws as DepthLM.generate."""
    from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout
    from audiocraft_mmd.models.depth_lm import gumbel_noise, sample_code
    cfg_coef = lm.cfg_coef if cfg_coef is None else cfg_coef
    B = len(attributes)
    conditions = attributes + ClassifierFreeGuidanceDropout(p=1.0)(attributes)
    condition_tensors = lm.condition_provider(lm.condition_provider.tokenize(conditions))
    guided = bool(condition_tensors)
    codes = torch.zeros(B, K, 0, dtype=torch.long) if prompt is None else prompt.clone()
    for t in range(codes.shape[-1], frames):
        state = reference_state(lm, torch.cat([codes, codes]) if guided else codes, condition_tensors)
        frame = []
        noise = gumbel_noise(K, B, lm.card, **sampling)  # one draw per frame, as DepthLM does
        for k in range(K):
            previous = [torch.cat([c, c]) if guided else c for c in frame]
            logits = reference_depth_logits(lm, depth_inputs(lm, state, previous))
            if guided:
                cond, uncond = logits.split(B)
                logits = uncond + (cond - uncond) * cfg_coef
            frame.append(sample_code(logits, **sampling, gumbel=None if noise is None else noise[k])[:, 0])
        codes = torch.cat([codes, torch.stack(frame, 1)[..., None]], -1)
    return codes


def attributes_for(genres):
    from audiocraft.modules.conditioners import ConditioningAttributes
    return [ConditioningAttributes(text={"genre": genre, "description": None}) for genre in genres]


@pytest.mark.parametrize("context", ["first", "every"])
@pytest.mark.parametrize("conditioned", [False, True])
def test_likelihood_matches_the_slow_reference(conditioned, context):
    lm = build(depth_config(conditioned, context=context))
    codes = torch.randint(0, CARD, (2, K, 6), generator=torch.Generator().manual_seed(1))
    attributes = attributes_for(["rock", None])
    with torch.no_grad():
        condition_tensors = lm.condition_provider(lm.condition_provider.tokenize(attributes))
        output = lm.compute_predictions(codes, [], condition_tensors)
    assert output.logits.shape == (2, K, 6, CARD) and output.mask.all()
    torch.testing.assert_close(output.logits, reference_logits(lm, codes, condition_tensors), atol=1e-5, rtol=1e-5)


SAMPLINGS = [dict(use_sampling=True, temp=1.0, top_k=5, top_p=0.0),
             dict(use_sampling=True, temp=0.7, top_k=0, top_p=0.8),
             dict(use_sampling=True, temp=1.3, top_k=0, top_p=0.0),
             dict(use_sampling=False, temp=1.0, top_k=0, top_p=0.0)]


@pytest.mark.parametrize("temp, top_k", [(0.7, 3), (1.3, 0), (1.0, 6)])
def test_sampler_draws_musicgens_distribution(temp, top_k):
    """Gumbel-max draws follow softmax(logits / temp) over the top-k: the frequencies of 40000 draws are
    within 5 standard errors of it, and nothing outside the top-k is drawn."""
    from audiocraft_mmd.models.depth_lm import sample_code
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 1.5])
    n = 40000
    torch.manual_seed(0)
    codes = sample_code(logits.expand(n, -1), use_sampling=True, temp=temp, top_k=top_k, top_p=0.0)[:, 0]
    kept = logits.topk(top_k).indices if top_k else torch.arange(len(logits))
    expected = torch.zeros(len(logits))
    expected[kept] = torch.softmax(logits[kept] / temp, dim=-1)
    frequencies = torch.bincount(codes, minlength=len(logits)).float() / n
    assert (frequencies[expected == 0] == 0).all()
    assert ((frequencies - expected).abs() <= 5 * (expected * (1 - expected) / n).sqrt()).all()


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=["top_k", "top_p", "temperature", "greedy"])
@pytest.mark.parametrize("conditioned", [False, True], ids=["unconditional", "cfg"])
@pytest.mark.parametrize("context", ["first", "every"])
def test_sampling_matches_the_slow_reference_with_a_fixed_seed(conditioned, sampling, context):
    lm = build(depth_config(conditioned, context=context))
    attributes = attributes_for(["rock", "jazz"])
    torch.manual_seed(3)
    fast = lm.generate(None, attributes, max_gen_len=7, cfg_coef=3.0, **sampling)
    torch.manual_seed(3)
    slow = reference_generate(lm, attributes, 7, cfg_coef=3.0, **sampling)
    assert fast.shape == (2, K, 7)
    assert torch.equal(fast, slow)
    if sampling["use_sampling"]:  # the seed matters: the test compares draws, not a constant
        torch.manual_seed(4)
        assert not torch.equal(lm.generate(None, attributes, max_gen_len=7, cfg_coef=3.0, **sampling), fast)


@pytest.mark.parametrize("context", ["first", "every"])
def test_prompt_and_two_step_guidance_match_the_reference(context):
    lm = build(depth_config(conditioned=True, context=context))
    attributes = attributes_for(["rock", "jazz"])
    prompt = torch.randint(0, CARD, (2, K, 3), generator=torch.Generator().manual_seed(2))
    sampling = dict(use_sampling=True, temp=1.0, top_k=8, top_p=0.0)
    torch.manual_seed(5)
    one_step = lm.generate(prompt, attributes, max_gen_len=8, cfg_coef=2.0, two_step_cfg=False, **sampling)
    torch.manual_seed(5)
    two_step = lm.generate(prompt, attributes, max_gen_len=8, cfg_coef=2.0, two_step_cfg=True, **sampling)
    torch.manual_seed(5)
    slow = reference_generate(lm, attributes, 8, prompt=prompt, cfg_coef=2.0, **sampling)
    assert torch.equal(one_step[..., :3], prompt)
    assert torch.equal(one_step, slow) and torch.equal(two_step, slow)


@pytest.mark.parametrize("context", ["first", "every"])
def test_code_k_of_frame_t_sees_only_earlier_frames_and_lower_codes(context):
    lm = build(depth_config(context=context))
    T = 5
    codes = torch.randint(0, CARD, (1, K, T), generator=torch.Generator().manual_seed(0))
    frame, level = torch.arange(T)[None, :], torch.arange(K)[:, None]  # [1, T], [K, 1]
    with torch.no_grad():
        base = lm.compute_predictions(codes, [], {}).logits
        for t2 in range(T):
            for k2 in range(K):  # change code k2 of frame t2: which logits [k, t] move?
                changed = codes.clone()
                changed[0, k2, t2] = (changed[0, k2, t2] + 1) % CARD
                moved = (lm.compute_predictions(changed, [], {}).logits - base).abs().amax(-1)[0] > 1e-6  # [K, T]
                visible = (t2 < frame) | ((t2 == frame) & (k2 < level))
                assert torch.equal(moved, visible), (t2, k2, moved, visible)


def test_steps_per_frame_temporal_and_depth(monkeypatch):
    """One temporal step and K depth steps (each through every depth layer) per frame."""
    from audiocraft_mmd.models import depth_lm
    from audiocraft_mmd.patterns import depth_steps, sequence_steps
    lm = build(depth_config(num_layers=2))
    assert sequence_steps(lm.pattern_provider, 50) == 50 and depth_steps(lm.pattern_provider, 50) == 50 * K
    calls = {"temporal": 0, "layer": 0}
    temporal_states, layer_step = depth_lm.DepthLM.temporal_states, depth_lm.depth_layer_step

    def counted_temporal(self, *args, **kwargs):
        calls["temporal"] += 1
        return temporal_states(self, *args, **kwargs)

    def counted_layer(*args, **kwargs):
        calls["layer"] += 1
        return layer_step(*args, **kwargs)
    monkeypatch.setattr(depth_lm.DepthLM, "temporal_states", counted_temporal)
    monkeypatch.setattr(depth_lm, "depth_layer_step", counted_layer)
    lm.generate(None, attributes_for([None, None]), max_gen_len=6)
    assert calls == {"temporal": 6, "layer": 6 * K * 2}


def test_config_errors_name_the_key():
    from audiocraft_mmd.errors import ConfigError
    cfg = depth_config()
    cfg.codebooks_pattern.depth.num_heads = 3
    with pytest.raises(ConfigError, match="codebooks_pattern.depth"):
        build(cfg)
    cfg = depth_config()
    cfg.codebooks_pattern.depth.width = 3
    with pytest.raises(ConfigError, match="codebooks_pattern.depth.width"):
        build(cfg)
    with pytest.raises(ConfigError, match="codebooks_pattern.depth.*context must be one of first, every"):
        build(depth_config(context="all"))


@pytest.mark.parametrize("context", ["first", "every"])
def test_state_dict_round_trip(tmp_path, context):
    lm = build(depth_config(conditioned=True, context=context), seed=0)
    torch.save(lm.state_dict(), tmp_path / "lm.th")
    other = build(depth_config(conditioned=True, context=context), seed=1)
    codes = torch.randint(0, CARD, (2, K, 5))
    attributes = attributes_for(["rock", None])
    with torch.no_grad():
        assert not torch.allclose(lm.compute_predictions(codes, attributes).logits,
                                  other.compute_predictions(codes, attributes).logits)
        other.load_state_dict(torch.load(tmp_path / "lm.th", weights_only=True))
        torch.testing.assert_close(other.compute_predictions(codes, attributes).logits,
                                   lm.compute_predictions(codes, attributes).logits, atol=0, rtol=0)


@pytest.mark.parametrize("modeling", ["parallel", "delay"])
def test_parallel_and_delay_are_unchanged_by_the_depth_block(modeling):
    """The `depth` block in model/lm/small.yaml is read only when modeling=depth: with it, the other patterns
    build AudioCraft's own LM, bit for bit (same seed, same weights, same logits)."""
    from audiocraft.models import builders
    from audiocraft.models.lm import LMModel
    cfg = depth_config()
    cfg.codebooks_pattern.modeling = modeling
    lm = build(cfg)
    torch.manual_seed(0)
    reference = builders.get_lm_model.__wrapped__(lm_config(modeling)).eval()  # AudioCraft's builder, no depth block
    assert type(lm) is LMModel and lm.pattern_provider.__class__ is reference.pattern_provider.__class__
    state, expected = lm.state_dict(), reference.state_dict()
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    codes = torch.randint(0, CARD, (2, K, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        output, expected_output = lm.compute_predictions(codes, []), reference.compute_predictions(codes, [])
    assert torch.equal(output.logits.nan_to_num(), expected_output.logits.nan_to_num())
    assert torch.equal(output.mask, expected_output.mask) and output.mask.any()


# ---- end to end: dora run, export, get_pretrained ----

@pytest.fixture(scope="module")
def depth_xp(tiny_egs, dora_dir, codec_sig):
    run, xp_folder = run_new_xp(["run", *TINY_LM, *datasource(tiny_egs),
                                 f"compression_model_checkpoint=//sig/{codec_sig}",
                                 "codebooks_pattern.modeling=depth", "codebooks_pattern.depth.dim=16",
                                 "codebooks_pattern.depth.num_heads=2"], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    return xp_folder, run.stdout + run.stderr


def test_depth_lm_trains_evaluates_and_generates_from_a_sig(depth_xp):
    xp_folder, log = depth_xp
    # The codec's loss is aligned for the delay pattern; the depth LM fits it anyway, and says so.
    assert "consistent with any codec alignment" in log + (xp_folder / "solver.log.0").read_text()
    history = json.loads((xp_folder / "history.json").read_text())
    assert {"train", "valid", "evaluate", "generate"} <= set(history[0])
    for k in range(1, K + 1):
        assert math.isfinite(history[0]["valid"][f"ce_q{k}"])
    assert list((xp_folder / "samples").rglob("*.wav"))


def test_depth_lm_exports_and_generates_offline(depth_xp, dora_dir, tmp_path, monkeypatch):
    from audiocraft.models import MusicGen
    from audiocraft_mmd import train
    from audiocraft_mmd.metrics.lm_measures import load_lm
    from audiocraft_mmd.export import export
    from audiocraft_mmd.models.depth_lm import DepthLM

    xp_folder, _ = depth_xp
    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = export(tmp_path / "export", lm=f"//sig/{xp_folder.name}")
    model = MusicGen.get_pretrained(str(folder), device="cpu")
    assert isinstance(model.lm, DepthLM) and model.lm.depth_dim == 16
    trained, _ = load_lm(xp_folder)  # the XP's best state, as compare_patterns loads it
    for name, tensor in trained.state_dict().items():
        assert torch.equal(model.lm.state_dict()[name], tensor), name
    model.set_generation_params(duration=0.5)
    wav = model.generate_unconditional(2)
    assert wav.shape[:2] == (2, 1) and wav.shape[-1] == 8000


def test_compare_patterns_reports_temporal_and_depth_steps(depth_xp, tiny_egs, dora_dir, codec_sig, tmp_path,
                                                           monkeypatch):
    from audiocraft_mmd import compare_patterns, train
    from audiocraft_mmd.metrics import lm_measures

    xp_folder, _ = depth_xp
    monkeypatch.setattr(train.main.dora, "dir", dora_dir)
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(dora_dir))
    # The codec's loss is delay-aligned: parallel needs allow_mismatch, depth does not.
    assert "pattern_consistency.allow_mismatch=true" in lm_measures.lm_overrides(f"//sig/{codec_sig}", "parallel", [])
    assert "pattern_consistency.allow_mismatch=true" not in lm_measures.lm_overrides(f"//sig/{codec_sig}", "depth", [])
    shared = [o for o in TINY_LM if o != "solver=musicgen/mmd"] + datasource(tiny_egs) + \
        ["codebooks_pattern.depth.dim=16", "codebooks_pattern.depth.num_heads=2"]
    (cell,) = compare_patterns.main(["--codec", f"//sig/{codec_sig}", "--patterns", "depth", "--no-train",
                                     "--out", str(tmp_path / "cmp"), "--gen-duration", "0.5", "--gen-samples", "1",
                                     "--", *shared])
    assert cell.sig == xp_folder.name and cell.consistent  # the trained XP, reused
    assert (cell.temporal_steps_per_second, cell.depth_steps_per_second) == (50, 50 * K)  # 50 Hz frames
    assert cell.steps_per_second == 50 + 50 * K and len(cell.valid_ce_per_codebook) == K and cell.rtf > 0
    assert "| 250 (50 + 200) |" in (tmp_path / "cmp" / "comparison.md").read_text()
