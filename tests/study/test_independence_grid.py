"""Grid ``independence`` and its table: every experiment has its reference at the same seed, fine-tunes
start from that seed's trained baseline, and the table applies the gates."""

import math

import omegaconf

from audiocraft_mmd.study.independence import (CodecRole, compare, compare_measured, gap_lines, lm_table,
                                               measured_table, table, verdict_lines)
from audiocraft_mmd.study.independence_specs import (ABLATIONS, BASELINE, CAPACITY_CONTROL, CHUNK, DEPTH_ABLATIONS,
                                                     FINETUNE_REFERENCE, FIRST_BUILT, LM_PAIRS, LMS, LONG_BASELINE,
                                                     LONG_EXPERIMENTS, LONG_FINETUNE_REFERENCE, LONG_SCHEDULE,
                                                     LONG_SCHEDULE_HALF, LONG_SCHEDULE_LEVERS, LONGER_BASELINE,
                                                     LONGER_SCHEDULE, PAST, PREDICTABLE, SCHEDULE, SCHEDULE_LEVER,
                                                     SPEED_ABLATION, experiment_xp, experiments, lm_codecs)
from audiocraft_mmd.study.results import LMResult
from audiocraft_mmd.study.specs import SMALL, codec_xp
from audiocraft_mmd.utils.paths import CONFIG_DIR


def test_experiments_and_their_references():
    for seed in SMALL.seeds:
        table_ = experiments(seed)
        start = codec_xp(SMALL, SMALL.baseline(seed)).sig
        for label, (overrides, reference) in table_.items():
            assert overrides["seed"] == seed
            assert reference is None or reference in table_
            if "continue_from" in overrides:
                long = label in LONG_EXPERIMENTS
                assert overrides["continue_from"] == f"//sig/{start}" and \
                    overrides["optim.epochs"] == 4 * (5 if long else 1)
                own_reference = LONG_FINETUNE_REFERENCE if long else FINETUNE_REFERENCE
                assert reference == (None if label == own_reference else own_reference), label
            elif label in LONG_EXPERIMENTS:  # from scratch at five times the study's 10 epochs
                assert overrides["optim.epochs"] == 50 and reference == (None if label == LONG_BASELINE
                                                                         else LONG_BASELINE), label
            elif label in LONG_SCHEDULE_LEVERS:  # each against the baseline of its own budget
                epochs = overrides["optim.epochs"]
                assert epochs == (100 if label in (LONGER_BASELINE, LONGER_SCHEDULE) else 50), label
                if label == LONGER_BASELINE:
                    assert reference is None
                else:
                    assert reference is not None and table_[reference][0]["optim.epochs"] == epochs, label
        assert table_[FINETUNE_REFERENCE][0]["mmd.weight"] == 0 and table_[BASELINE][1] is None
        assert len({experiment_xp(overrides).sig for overrides, _ in table_.values()}) == len(table_)
        # the schedule's lever changes the warm-up and the gradient share only
        changed = {key for key, value in table_[SCHEDULE_LEVER][0].items() if table_[SCHEDULE][0].get(key) != value}
        assert changed == {"mmd.warmup", "mmd.target_grad_ratio"}
        # the loss given the past changes the schedule's condition only; the predictability term runs alone
        changed = {key for key, value in table_[PAST][0].items() if table_[SCHEDULE][0].get(key) != value}
        assert changed == {"mmd.condition"} and table_[PAST][1] == BASELINE
        assert table_[PREDICTABLE][0]["mmd.weight"] == 0 and table_[PREDICTABLE][0]["mmd.predictability"] > 0


def row(label, reference, fast, entropy=7.5, sisnr=5.0):
    metrics = {"si_snr_db": sisnr, "entropy_mean": entropy, "entropy_min": entropy - 0.3, "mi_parallel": 0.5,
               "mi_delay": 0.4, "mi_fast_delay": fast, "mi_slow_delay": 0.1, "mi_fast_parallel": fast,
               "mmd_estimate": 0.01}
    return {"seed": 1, "label": label, "sig": "0" * 8, "reference": reference, "metrics": metrics, "minutes": 3.0}


def test_gates():
    reference = row("ref", None, 0.4)
    assert compare(row("a", "ref", 0.2), reference)["met"]                       # 50 % cut, no loss
    assert not compare(row("b", "ref", 0.21), reference)["met"]                  # 47.5 %
    assert not compare(row("c", "ref", 0.1, entropy=7.2), reference)["met"]      # entropy -0.3 bit
    assert not compare(row("d", "ref", 0.1, sisnr=4.4), reference)["met"]        # -0.6 dB
    rows = [reference, row("a", "ref", 0.2), {**row("e", "ref", 0.), "metrics": None}]
    text = table(rows)
    assert "| 1 | a | 00000000 |" in text and "50.0 %" in text and "| met |" in text and "not finished" in text


def dependence_report(fast, slow=0.1, entropy=7.5, half_width=0.02):
    def split(fast_):
        values = {"total": fast_ + slow, "fast": fast_, "slow": slow}
        return {**values, "intervals": {k: (v - half_width, v + half_width) for k, v in values.items()}}
    return {"usage": {"entropy": [entropy] * 4}, "fast_slow": {"parallel": split(fast), "delay": split(fast)}}


def test_whole_split_gates_ask_the_cut_to_leave_the_reference_interval():
    reference = {**row("ref", None, 0.4), "dependence": dependence_report(0.4)}
    halved = {**row("a", "ref", 0.2), "dependence": dependence_report(0.2)}
    assert compare_measured(halved, reference)["met"] and compare_measured(halved, reference)["outside"]
    wide = {**reference, "dependence": dependence_report(0.4, half_width=0.3)}  # 0.2 is inside [0.1, 0.7]
    result = compare_measured(halved, wide)
    assert result["cut"] == 0.5 and not result["outside"] and not result["met"]
    collapsed = {**halved, "dependence": dependence_report(0.2, entropy=7.0)}
    assert not compare_measured(collapsed, reference)["met"]
    text = measured_table([reference, halved, row("b", "ref", 0.1)])  # b: not measured, left out
    assert "| 1 | a | 00000000 | 7.50 |" in text and "0.200 [0.180, 0.220]" in text and "| 50.0 % | yes |" in text
    assert "| b |" not in text


def lm(label, seed, is_reference, pattern, ce):
    return LMResult(codec=CodecRole(label, seed, is_reference), pattern=pattern, sig=pattern[:8], cell={
        "valid_ce": sum(ce) / len(ce), "valid_ce_per_codebook": list(ce)}, minutes=2.0)


def test_lm_table_and_gap_closure_per_seed():
    reference, variant = LM_PAIRS[SCHEDULE], SCHEDULE
    lms = [lm(reference, 1, True, "parallel", [4., 5., 5., 5.]), lm(reference, 1, True, "depth", [4., 4., 4., 4.]),
           lm(variant, 1, False, "parallel", [4., 5., 5., 5.]), lm(variant, 1, False, "depth", [4., 4.5, 4.5, 4.5])]
    rows = [{**row(reference, None, 0.4), "label": reference}, {**row(variant, reference, 0.2), "label": variant}]
    text = lm_table(rows, lms)
    # the parallel LM's CE 2..K is 1 nat above depth's on the reference, 0.5 on the variant
    assert f"| 1 | {reference} | parallel | parallel | 4.750 | 4.000 / 5.000 / 5.000 / 5.000 | 5.000 |" in text
    assert "| +1.000 |" in text and "| +0.500 |" in text
    entropy_nats = 7.5 * math.log(2)
    assert f"{entropy_nats:.3f} | {4.75 - entropy_nats:+.3f}" in text
    (line,) = gap_lines(lms)
    assert "+1.000 → +0.500 nats; share closed: 50.0%" in line
    undefined = [lms[0], lm(reference, 1, True, "depth", [4., 6., 6., 6.]), *lms[2:]]
    assert "undefined" in gap_lines(undefined)[0]
    # a second depth LM: its own gap column and its own closure line
    second = [lm(reference, 1, True, FIRST_BUILT, [3.5, 4.5, 4.5, 4.5]),
              lm(variant, 1, False, FIRST_BUILT, [4., 4.5, 4.5, 4.5])]
    text = lm_table(rows, lms + second)
    assert f"gap to depth / {FIRST_BUILT} (2..K)" in text and "| +1.000 / +0.500 |" in text
    lines = gap_lines(lms + second)
    assert len(lines) == 2 and \
        f"parallel − {FIRST_BUILT} (codebooks 2..K) +0.500 → +0.500 nats; share closed: 0.0%" in lines[1]


class RecordingSource:
    """A source of figures (:mod:`audiocraft_mmd.study.measurements`) with every LM finished at a validation
    CE of 4.5, which records the LMs asked to generate."""

    def __init__(self):
        self.generated = []

    def lm(self, key, argv):
        from common_utils import lm_measurement
        return lm_measurement(f"{key.pattern}{len(key.extra)}", key.codec_sig, key.pattern, key.seed,
                              [4., 5., 4.5, 4.5], extra=key.extra, generates=False)

    def generation(self, lm, what):
        self.generated.append(lm.pattern)
        return {"kernel_distance": 0.0123, "distances": {"musicnn_kernel_ci_low": 0.01, "musicnn_kernel_ci_high": 0.02}}


def test_generate_measures_the_factorised_and_depth_lms_and_adds_their_kernel_distance():
    from audiocraft_mmd.study import independence
    source = RecordingSource()
    rows = [{**row(BASELINE, None, 0.4), "label": BASELINE, "codec": object()}]
    lms = independence.collect_lms(rows, source, generate=True)
    assert len(lms) == len(LMS) and sorted(source.generated) == ["delay", "depth", "parallel"]
    text = lm_table(rows, lms)
    assert "kernel distance to evaluate [95 %]" in text and "| 0.0123 [0.01, 0.02] |" in text
    assert text.count("0.0123") == 3  # the ablations and the first-built depth LM did not generate
    assert "kernel distance" not in lm_table(rows, independence.collect_lms(rows, RecordingSource()))


def test_lm_grid_trains_every_pattern_on_both_codecs_of_each_pair():
    codecs = lm_codecs()
    assert codecs[:2] == [BASELINE, SCHEDULE] and codecs[-8:] == [LONG_BASELINE, LONG_SCHEDULE, CHUNK,
                                                                 LONG_SCHEDULE_HALF, LONGER_BASELINE, LONGER_SCHEDULE,
                                                                 PAST, PREDICTABLE]
    assert len(codecs) == len(set(codecs)) and set(codecs) == {*LM_PAIRS, *LM_PAIRS.values()}
    assert [pattern for pattern, _ in LMS.values()] == \
        ["parallel", "delay", "depth", "depth", "depth", "depth", "parallel", "depth"]
    # "depth" writes out the depth defaults (so that its XPs keep their signatures)
    defaults = omegaconf.OmegaConf.load(CONFIG_DIR / "model" / "lm" / "small.yaml").codebooks_pattern.depth
    assert sorted(LMS["depth"][1]) == sorted(f"codebooks_pattern.depth.{key}={defaults[key]}"
                                             for key in ("context", "dim"))
    assert sorted(LMS[FIRST_BUILT][1]) == ["codebooks_pattern.depth.context=first", "codebooks_pattern.depth.dim=64"]
    # each ablation takes one setting from the first-built depth LM, the other from the default
    assert set(ABLATIONS) == {*DEPTH_ABLATIONS, CAPACITY_CONTROL, SPEED_ABLATION}
    assert set(LMS[SPEED_ABLATION][1]) - set(LMS["depth"][1]) == {"codebooks_pattern.depth.hidden_scale=2"}
    for name in DEPTH_ABLATIONS:
        assert len(set(LMS[name][1]) & set(LMS[FIRST_BUILT][1])) == 1 and \
            len(set(LMS[name][1]) & set(LMS["depth"][1])) == 1
    for seed in SMALL.seeds:
        assert set(codecs) <= set(experiments(seed))
    assert set(SMALL.lm_overrides) == {"optim.updates_per_epoch=100", "optim.lr=3e-3"}  # 400 updates (4 epochs)


def test_the_capacity_control_is_a_parallel_lm_at_least_as_large_as_the_depth_lm():
    import audiocraft_mmd  # noqa: F401  (the depth LM's builder)
    from audiocraft.models import builders
    from audiocraft_mmd.benchmarks.depth_lm import lm_config

    def parameters(name):
        pattern, overrides = LMS[name]
        cfg = lm_config(pattern, n_q=4, card=256)
        for override in overrides:
            key, value = override.split("=")
            omegaconf.OmegaConf.update(cfg, key, int(value) if value.isdigit() else value)
        return sum(p.numel() for p in builders.get_lm_model(cfg).parameters())
    assert parameters("depth") <= parameters(CAPACITY_CONTROL) < 1.1 * parameters("depth")


def test_repeat_lines_give_the_lm_seed_spread(tmp_path):
    from audiocraft_mmd.study.independence import repeat_lines
    from audiocraft_mmd.study.measurements import MeasurementStore
    from common_utils import lm_measurement
    store = MeasurementStore(tmp_path)
    again = {"parallel": [4., 5.1, 5.1, 5.1], "depth": [4., 4.2, 4.2, 4.2]}  # at the repeat's LM seed
    for name, ce in again.items():
        pattern, extra = LMS[name]
        store.save(lm_measurement(f"{name}-again", "0" * 8, pattern, 2136, ce, extra=extra, generates=False))
    first = [lm(BASELINE, 2036, True, "parallel", [4., 5., 5., 5.]),
             lm(BASELINE, 2036, True, "depth", [4., 4., 4., 4.])]
    rows = [{**row(BASELINE, None, 0.4), "seed": 2036, "label": BASELINE, "codec": object()}]
    lines = repeat_lines(rows, first, store)
    assert ("- parallel on baseline (500 updates) seed=2036, CE 2..K at LM seeds 2036 / 2136: 5.000 / 5.100 "
            "(difference +0.100)") in lines
    assert "- parallel − depth (2..K) at LM seeds 2036 / 2136: +1.000 / +0.900" in lines
    assert repeat_lines([{**rows[0], "codec": None}], first, store) == []


def test_targets_per_variant_and_seed_need_every_gate_and_other_music():
    def measured_row(label, reference, fast, seed, **kwargs):
        return {**row(label, reference, fast), "seed": seed, "dependence": dependence_report(fast, **kwargs)}
    rows = [measured_row("ref", None, 0.4, seed) for seed in (1, 2)]
    rows += [measured_row("halved", "ref", 0.2, 1), measured_row("halved", "ref", 0.2, 2),
             measured_row("one seed", "ref", 0.2, 1), measured_row("one seed", "ref", 0.35, 2)]
    lines = verdict_lines(rows)
    assert "Variants that meet every gate at every seed: halved." in lines
    (one_seed,) = [line for line in lines if line.startswith("- one seed:")]
    assert "seed 1: cut 50.0% (outside the reference's interval)" in one_seed and one_seed.count("**not met**") == 1
    # on other music the halved codec's cut is inside the reference's interval: not met any more
    other = [{**r, "dependence": dependence_report(r["dependence"]["fast_slow"]["delay"]["fast"], half_width=0.3)}
             for r in rows]
    lines = verdict_lines(rows, other)
    assert "No variant meets every gate at every seed." in lines
    (halved,) = [line for line in lines if line.startswith("- halved:")]
    assert "other music: cut 50.0% (inside the reference's interval): **not met**" in halved
    unmeasured = [r for r in rows if not (r["label"] == "halved" and r["seed"] == 2)]
    assert "seed 2: not measured" in [line for line in verdict_lines(unmeasured) if line.startswith("- halved:")][0]


def test_report_section_is_left_out_until_a_variant_finishes(monkeypatch, tmp_path):
    from audiocraft_mmd.study import independence as independence
    from audiocraft_mmd.study.measurements import MeasurementStore
    store = MeasurementStore(tmp_path)  # nothing stored: no other music measured either
    monkeypatch.setattr(independence, "collect", lambda source: [{**row("ref", None, 0.4), "codec": None},
                                                                 {**row("a", "ref", 0.2), "codec": None}])
    assert independence.report_section(store) is None
    measured = []
    monkeypatch.setattr(independence, "collect", lambda source: [{**row("ref", None, 0.4), "codec": object()},
                                                                 {**row("a", "ref", 0.2), "codec": object()}])
    monkeypatch.setattr(independence, "measure", lambda rows, source, data=None: measured.append(data) or [
        r.update(dependence=dependence_report(r["metrics"]["mi_fast_delay"])) for r in rows])
    monkeypatch.setattr(independence, "collect_lms", lambda rows, source: [])
    text = independence.report_section(store, other_data="/nonexistent/other_music")
    assert measured == [None]  # no other music here: the evaluate split only
    assert text.startswith("## Making the codebooks independent") and "### Targets (grid `independence`)" in text
    assert "- a: seed 1: cut 50.0% (outside the reference's interval)" in text and "**met**" in text
