"""The LM solver's generate stage reports the distance of its generations to the evaluate split (opt-in)."""

import json

import pytest

from common_utils import TINY_LM, datasource, require_modules, run_new_xp

require_modules("musicnn", install="pip install --no-deps musicnn==0.1.0", module_level=True)


def test_generate_stage_reports_music_distance(tiny_egs, dora_dir, codec_sig):
    run, xp = run_new_xp(["run", *TINY_LM, *datasource(tiny_egs), f"compression_model_checkpoint=//sig/{codec_sig}",
                          "generate.music_distance.enabled=true", "generate.music_distance.bootstrap=10"], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    generate = json.loads((xp / "history.json").read_text())[0]["generate"]
    log = (xp / "solver.log.0").read_text()
    if "No distance of the generations" in log:  # a silent generation is reported, not a crash
        pytest.fail("generations were silent: " + log[log.index("No distance"):][:300])
    for name in ("kernel", "frechet"):
        value = generate[f"musicnn_{name}"]
        assert generate[f"musicnn_{name}_ci_low"] <= value <= generate[f"musicnn_{name}_ci_high"]
    assert generate["musicnn_frechet"] > 0
