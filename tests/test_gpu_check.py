"""`scripts/gpu_check` on a machine without CUDA: it runs, and its JSON says CUDA is absent and every GPU test
skipped."""

import json
import os
import subprocess
import sys

import pytest
import torch

from common_utils import AUTOCAST_DTYPES, GPU_ESTIMATORS, PATTERNS, REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: scripts/gpu_check runs the real checks")
def test_gpu_check_without_cuda_writes_a_json_of_skipped_tests(tmp_path):
    out = tmp_path / "report" / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    run = subprocess.run([str(REPO / "scripts" / "gpu_check"), "--out", str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cuda"]["available"] is False and "CUDA is absent" in report["cuda"]["reason"]
    tests = report["tests"]
    names = {test["test"].split("::")[1].split("[")[0] for test in tests}
    assert {"test_estimator_under_autocast_matches_float32",
            "test_paper_recipe_steps_on_cuda_per_step_macro_batch_and_row_bank",
            "test_lm_step_and_generation_on_cuda_with_xformers",
            "test_two_ranks_over_nccl_match_one_on_the_global_batch"} == names
    expected = len(GPU_ESTIMATORS) * len(AUTOCAST_DTYPES) + 1 + len(PATTERNS) + 1  # + the paper recipe, NCCL
    assert len(tests) == expected == 17  # 4 estimators x 2 dtypes, the recipe, 7 patterns (depth too), NCCL
    assert all(test["outcome"] == "skipped" and ("CUDA is absent" in test["reason"] or "0 GPU(s)" in test["reason"])
               for test in tests), tests
    assert report["outcomes"] == {"passed": 0, "failed": 0, "error": 0, "skipped": expected}
    assert report["timings"] == {"skipped": report["cuda"]["reason"]}
