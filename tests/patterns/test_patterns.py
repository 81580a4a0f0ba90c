"""Pattern providers: round trips against slow references, step counts, config errors, consistency."""

import logging

import omegaconf
import pytest
import torch

from audiocraft_mmd.errors import ConfigError
from audiocraft_mmd.patterns import build_pattern_provider, pattern_alignment_delays, sequence_steps

SPECIAL = -1


def reference_positions(name: str, kwargs: dict, n_q: int, frames: int):
    """Sequence length S (initial special step included) and the step of each (codebook, frame),
    written from each pattern's definition, one token at a time."""
    if name in ("parallel", "delay", "grouped_delay"):
        if name == "parallel":
            delays = [0] * n_q
        elif name == "delay":
            delays = kwargs.get("delays") or list(range(n_q))
        else:
            delays = [q // kwargs.get("group_size", 2) for q in range(n_q)]
        return 1 + frames + max(delays), {(q, t): 1 + t + delays[q] for q in range(n_q) for t in range(frames)}
    if name == "unroll":  # full flattening: frame t, then codebook q, one token per step
        return 1 + n_q * frames, {(q, t): 1 + t * n_q + q for q in range(n_q) for t in range(frames)}
    if name == "coarse_first":  # codebook 0 for every frame, then the others in parallel
        delays = kwargs.get("delays") or [0] * (n_q - 1)
        steps = {(0, t): 1 + t for t in range(frames)}
        steps.update({(q, t): 1 + frames + t + delays[q - 1] for q in range(1, n_q) for t in range(frames)})
        return 1 + 2 * frames + max(delays), steps
    if name == "musiclm":  # groups of codebooks, each group flattened over the whole sequence
        group = kwargs.get("group_by", 2)
        return 1 + n_q * frames, {(q, t): 1 + (q // group) * group * frames + t * group + q % group
                                  for q in range(n_q) for t in range(frames)}
    raise KeyError(name)


def reference_build(z: torch.Tensor, name: str, kwargs: dict) -> torch.Tensor:
    batch, n_q, frames = z.shape
    length, steps = reference_positions(name, kwargs, n_q, frames)
    sequence = torch.full((batch, n_q, length), SPECIAL, dtype=z.dtype)
    for (q, t), step in steps.items():
        sequence[:, q, step] = z[:, q, t]
    return sequence


CASES = [
    ("parallel", {}), ("delay", {}), ("delay", {"delays": [0, 2, 2, 5]}), ("unroll", {}),
    ("coarse_first", {}), ("coarse_first", {"delays": [0, 1, 2]}), ("musiclm", {"group_by": 2}),
    ("grouped_delay", {"group_size": 2}), ("grouped_delay", {"group_size": 3}),
]


def pattern_cfg(name: str, kwargs: dict) -> omegaconf.DictConfig:
    return omegaconf.OmegaConf.create({"modeling": name, name: kwargs})


@pytest.mark.parametrize("name,kwargs", CASES)
def test_build_and_revert_match_the_slow_reference(name, kwargs):
    n_q, frames = 4, 7
    provider = build_pattern_provider(n_q, pattern_cfg(name, kwargs))
    z = torch.randint(0, 100, (2, n_q, frames))
    pattern = provider.get_pattern(frames)
    sequence, _, mask = pattern.build_pattern_sequence(z, SPECIAL)
    expected = reference_build(z, name, kwargs)
    assert torch.equal(sequence, expected)
    assert torch.equal(mask, expected[0] != SPECIAL)
    reverted, _, reverted_mask = pattern.revert_pattern_sequence(sequence, SPECIAL)
    assert torch.equal(reverted, z) and bool(reverted_mask.all())


@pytest.mark.parametrize("name,kwargs,expected", [
    ("parallel", {}, lambda t, k: t), ("delay", {}, lambda t, k: t + k - 1),
    ("coarse_first", {}, lambda t, k: 2 * t), ("unroll", {}, lambda t, k: k * t),
    ("musiclm", {}, lambda t, k: k * t), ("grouped_delay", {"group_size": 2}, lambda t, k: t + k // 2 - 1),
])
def test_autoregressive_steps(name, kwargs, expected):
    for n_q, frames in [(4, 50), (8, 13)]:
        provider = build_pattern_provider(n_q, pattern_cfg(name, kwargs))
        assert sequence_steps(provider, frames) == expected(frames, n_q)


def test_unknown_pattern_name_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"codebooks_pattern.modeling='delayed'.*grouped_delay"):
        build_pattern_provider(4, omegaconf.OmegaConf.create({"modeling": "delayed"}))


def test_block_no_provider_reads_is_an_error():
    cfg = omegaconf.OmegaConf.create({"modeling": "musiclm", "music_lm": {"group_by": 4}})
    with pytest.raises(ConfigError, match=r"codebooks_pattern.music_lm .*musiclm"):
        build_pattern_provider(4, cfg)


def test_argument_the_provider_does_not_take_is_an_error():
    with pytest.raises(ConfigError, match=r"codebooks_pattern.parallel.delays is not an argument"):
        build_pattern_provider(4, pattern_cfg("parallel", {"delays": [0, 1, 2, 3]}))
    with pytest.raises(ConfigError, match=r"codebooks_pattern.delay"):
        build_pattern_provider(4, pattern_cfg("delay", {"delays": [0, 1]}))  # AudioCraft's assert, named


def test_audiocraft_builder_goes_through_our_checks():
    from audiocraft.models import builders
    cfg = omegaconf.OmegaConf.create({"modeling": "grouped_delay", "grouped_delay": {"group_size": 2},
                                      "delay": {"delays": [0, 1, 2, 3]}})  # other known blocks are fine
    assert builders.get_codebooks_pattern_provider(4, cfg).delays == [0, 0, 1, 1]
    with pytest.raises(ConfigError):
        builders.get_codebooks_pattern_provider(4, omegaconf.OmegaConf.create({"modeling": "nope"}))


@pytest.mark.parametrize("name,kwargs,delays", [
    ("parallel", {}, [0, 0, 0, 0]), ("delay", {}, [0, 1, 2, 3]), ("unroll", {}, [0, 0, 0, 0]),
    ("coarse_first", {"delays": [0, 1, 1]}, [0, 0, 1, 1]), ("grouped_delay", {"group_size": 2}, [0, 0, 1, 1]),
])
def test_alignment_delays(name, kwargs, delays):
    provider = build_pattern_provider(4, pattern_cfg(name, kwargs))
    assert pattern_alignment_delays(provider, kwargs) == delays


def lm_cfg(modeling: str, allow_mismatch: bool = False) -> omegaconf.DictConfig:
    return omegaconf.OmegaConf.create({
        "compression_model_checkpoint": "//sig/codec", "compression_model_n_q": None,
        "transformer_lm": {"n_q": 4}, "codebooks_pattern": {"modeling": modeling},
        "pattern_consistency": {"allow_mismatch": allow_mismatch}})


def codec_cfg(weight: float, alignment: str) -> omegaconf.DictConfig:
    return omegaconf.OmegaConf.create({"rvq": {"n_q": 4, "bins": 64},
                                       "mmd": {"weight": weight, "alignment": alignment, "delays": None}})


def test_mismatched_pattern_is_rejected_unless_allowed(caplog):
    from audiocraft_mmd.solvers.musicgen_mmd import check_pattern_consistency
    check_pattern_consistency(lm_cfg("delay"), codec_cfg(1., "delay"))
    check_pattern_consistency(lm_cfg("parallel"), codec_cfg(1., "parallel"))
    with pytest.raises(ConfigError, match=r"'parallel' implies delays \[0, 0, 0, 0\].*\[0, 1, 2, 3\].*allow_mismatch"):
        check_pattern_consistency(lm_cfg("parallel"), codec_cfg(1., "delay"))
    with caplog.at_level(logging.WARNING):
        check_pattern_consistency(lm_cfg("parallel", allow_mismatch=True), codec_cfg(1., "delay"))
    assert "allow_mismatch=true" in caplog.text
    check_pattern_consistency(lm_cfg("unroll"), codec_cfg(0., "delay"))  # no loss: anything goes
