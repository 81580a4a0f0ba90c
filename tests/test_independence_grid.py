"""Grid ``independence`` (#23) and its table: every experiment has its reference at the same seed, fine-
tunes start from that seed's trained baseline, and the table applies the issue's gates."""

from audiocraft_mmd.grids._study import SMALL, codec_xp
from audiocraft_mmd.grids.independence import BASELINE, FINETUNE_REFERENCE, experiments
from audiocraft_mmd.independence_report import compare, table


def test_experiments_and_their_references():
    for seed in SMALL.seeds:
        table_ = experiments(seed)
        start = codec_xp(SMALL, SMALL.baseline(seed)).sig
        for label, (overrides, reference) in table_.items():
            assert overrides["seed"] == seed
            assert reference is None or reference in table_
            if "continue_from" in overrides:
                assert overrides["continue_from"] == f"//sig/{start}" and overrides["optim.epochs"] == 4
                assert reference in (None, FINETUNE_REFERENCE)
        assert table_[FINETUNE_REFERENCE][0]["mmd.weight"] == 0 and table_[BASELINE][1] is None


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
