"""`python -m audiocraft_mmd.compare_patterns --lm-seeds N`: one LM XP per seed, the price reported (LMs faked)."""

import json

from audiocraft_mmd import compare_patterns, train
from audiocraft_mmd.metrics.lm_measures import Cell

FAKE_CE = {"parallel": [1.0, 2.0, 3.0], "depth": [0.9, 1.7, 2.7]}


def test_lm_seeds_train_one_xp_per_seed_and_report_the_price(tmp_path, monkeypatch):
    monkeypatch.setattr(train.main.dora, "dir", tmp_path / "dora")
    monkeypatch.setattr(compare_patterns, "lm_overrides",
                        lambda codec, pattern, extra: ["solver=musicgen/mmd", f"codebooks_pattern.modeling={pattern}"])
    monkeypatch.setattr(compare_patterns, "is_finished", lambda xp: False)
    trained = []
    monkeypatch.setattr(compare_patterns, "train_xp", trained.append)

    def measure(codec, pattern, xp, *args, **kwargs):
        offset = 0.01 * (xp.cfg.seed - 2036)  # a second LM seed lands slightly elsewhere
        ce = [v + offset for v in FAKE_CE[pattern]]
        return Cell(codec=codec, pattern=pattern, sig=xp.sig, consistent=True, valid_ce=sum(ce) / 3,
                    valid_ce_per_codebook=ce, steps_per_second=100., gen_seconds=1., rtf=1., lm_params=1,
                    frame_rate=100., lm_seed=int(xp.cfg.seed))
    monkeypatch.setattr(compare_patterns, "measure_lm", measure)

    out = tmp_path / "cmp"
    cells = compare_patterns.main(["--codec", "//sig/fake", "--patterns", "parallel,depth", "--lm-seeds", "2",
                                   "--out", str(out), "--no-distance"])
    assert [(c.pattern, c.lm_seed) for c in cells] == [("parallel", 2036), ("parallel", 2037),
                                                      ("depth", 2036), ("depth", 2037)]
    assert len(trained) == 4 and "seed=2037" in trained[1] and not any(o.startswith("seed=") for o in trained[0])
    assert len({c.sig for c in cells}) == 4
    price = json.loads((out / "price.json").read_text())["//sig/fake"]
    assert price["num_seeds"] == 2
    assert abs(price["gap_rest_less_control"]["mean"] - 0.2) < 1e-9  # (0.3 + 0.3) / 2 - 0.1
    assert abs(price["price_per_second"]["mean"] - 100 * 0.4) < 1e-9
    table = (out / "comparison.md").read_text()
    assert "Price of the parallel factorisation on //sig/fake (2 LM seed(s))" in table
    assert "| parallel | 2037 |" in table
