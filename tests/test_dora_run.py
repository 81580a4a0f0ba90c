"""`dora run solver=compression/mmd` end to end, from the repository root, on tiny generated audio."""

import json
import os
import subprocess
import sys

import pytest

from audiocraft_mmd.errors import ConfigError

from common_utils import PLAIN_CODEC, RECIPE, SPLITS, TINY_RUN, datasource, dora, train_steps, write_tones


@pytest.fixture(scope="module")
def finished_xp(tiny_egs, tmp_path_factory):
    dora_dir = tmp_path_factory.mktemp("dora")
    # the codec recipe (the tiny runs of the other tests train AudioCraft's plain SEANet)
    overrides = ["solver=compression/mmd", *TINY_RUN, *RECIPE, *datasource(tiny_egs)]
    run = dora(["run", *overrides], dora_dir)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    (xp_folder,) = (dora_dir / "xps").iterdir()
    return xp_folder, run


def test_run_goes_through_every_stage(finished_xp):
    xp_folder, _ = finished_xp
    history = json.loads((xp_folder / "history.json").read_text())
    assert len(history) == 2
    assert {"train", "valid"} <= set(history[0])
    assert {"train", "valid", "evaluate", "generate"} <= set(history[1])
    train = history[1]["train"]
    assert train["mmd_rows"] == 4 * (50 - 3)  # batch x (frames - max delay): delay alignment
    for key in ["mmd", "mmd_loss", "mmd_clamped", "mmd_grad_ratio", "usage_q0", "usage_q3", "penalty", "logmel"]:
        assert key in train, key
    import torch
    state = torch.load(xp_folder / "checkpoint.th", map_location="cpu", weights_only=False)["model"]
    assert any(".branch." in key for key in state)  # the encoder's log-spectrum branch
    assert any(key.startswith("decoder.") and ".conv." in key and "convtr" not in key for key in state)
    evaluate = history[1]["evaluate"]
    for key in ["sisnr", "entropy_q0", "perplexity_q3", "usage_q3", "mmd_estimate",
                "mi_parallel", "mi_delay", "nmi_delay", "entropy_min", "mi_frames_per_cell"]:
        assert key in evaluate, key


def test_tensorboard_holds_every_metric_of_every_stage_at_its_epoch(finished_xp):
    """TensorBoard is on by default (``logging.log_tensorboard``): every numeric metric of history.json
    is a scalar ``<stage>/<metric>`` in ``<xp>/tensorboard``, at step = epoch, with the same value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    xp_folder, _ = finished_xp
    history = json.loads((xp_folder / "history.json").read_text())
    (events,) = [path.parent for path in (xp_folder / "tensorboard").glob("events.out.tfevents.*")]
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected = 0
    for epoch, stages in enumerate(history, start=1):
        for stage, metrics in stages.items():
            for name, value in metrics.items():
                expected += 1
                steps = {event.step: event.value for event in accumulator.Scalars(f"{stage}/{name}")}
                assert steps[epoch] == pytest.approx(value, rel=1e-5, abs=1e-6), (stage, name, epoch)
    for tag in ["train/mmd", "train/mmd_grad_ratio", "train/usage_q0", "valid/mel", "evaluate/entropy_q3",
                "evaluate/mi_parallel", "evaluate/mi_delay", "evaluate/sisnr", "generate/duration"]:
        assert tag in tags, tag
    assert sum(len(accumulator.Scalars(tag)) for tag in tags) == expected  # nothing else, nothing twice


def test_tensorboard_default_and_switch_change_no_signature():
    """``ec617973`` was the signature of ``solver=compression/mmd`` before TensorBoard was on by default."""
    from audiocraft_mmd import train
    assert train.main.get_xp(["solver=compression/mmd"]).sig == "ec617973"
    assert train.main.get_xp(["solver=compression/mmd", "logging.log_tensorboard=false"]).sig == "ec617973"


def test_run_writes_checkpoint_and_samples(finished_xp):
    xp_folder, _ = finished_xp
    assert (xp_folder / "checkpoint.th").exists()
    samples = list((xp_folder / "samples").rglob("*.wav"))
    assert len(samples) >= 2, samples


def test_checkpoint_loads_from_sig_with_audiocraft_loader(finished_xp, monkeypatch):
    """`//sig/` references resolve through our entry point and the checkpoint loads weights-only."""
    import torch
    from audiocraft.solvers.compression import CompressionSolver
    from audiocraft_mmd import train

    xp_folder, _ = finished_xp
    state = torch.load(xp_folder / "checkpoint.th", map_location="cpu", weights_only=True)
    assert state["xp.cfg"].mmd.weight == 1.0
    monkeypatch.setattr(train.main.dora, "dir", xp_folder.parent.parent)
    model = CompressionSolver.model_from_checkpoint(f"//sig/{xp_folder.name}")
    audio = torch.zeros(1, 1, 16000)
    codes, _ = model.encode(audio)
    assert codes.shape == (1, 4, 50)


def test_dependence_command_on_the_trained_codec(finished_xp, tiny_egs, tmp_path):
    """`python -m audiocraft_mmd.dependence` on a //sig/, compared with the same model exported."""
    from audiocraft.utils.export import export_encodec

    xp_folder, _ = finished_xp
    exported = export_encodec(xp_folder / "checkpoint.th", tmp_path / "exported" / "codec.th")
    out = tmp_path / "report"
    command = [sys.executable, "-m", "audiocraft_mmd.dependence", "--checkpoint", f"//sig/{xp_folder.name}",
               "--compare", str(exported), "--data", str(tiny_egs / "evaluate"), "--out", str(out),
               "--segment", "2", "--permutations", "10", "--ci-blocks", "3", "--kernel-rows", "64"]
    env = {**os.environ, "AUDIOCRAFT_DORA_DIR": str(xp_folder.parent.parent)}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    first, second = report["codecs"]
    assert first["checkpoint"] == f"//sig/{xp_folder.name}" and second["checkpoint"] == str(exported)
    for codec in (first, second):
        assert codec["num_codebooks"] == 4 and set(codec["alignments"]) == {"parallel", "delay"}
    # the same weights on the same audio: the same codes, hence the same figures
    assert first["usage"] == second["usage"]
    assert first["alignments"]["delay"]["mean_mi"] == second["alignments"]["delay"]["mean_mi"]
    assert (out / "dependence.png").stat().st_size > 10_000


def test_main_job_prepares_a_folder_of_audio_when_missing(tmp_path):
    """`prepare_data.source=<folder>`: the folder is converted, split and trained on, in one command."""
    music = tmp_path / "my music"
    write_tones(music, num_files=5, duration=31.0, seed=11)  # tracks must last >= 30 s
    egs = tmp_path / "egs"
    run = dora(["run", "solver=compression/mmd", *TINY_RUN, "optim.epochs=1", f"prepare_data.source={music}",
                "prepare_data.name=my_music", f"prepare_data.egs_root={egs}"],
               tmp_path / "dora", AUDIOCRAFT_MMD_CACHE=str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr[-6000:]
    for split in SPLITS:
        assert (egs / "my_music" / split / "data.jsonl").stat().st_size > 0
    (xp_folder,) = (tmp_path / "dora" / "xps").iterdir()
    assert "train" in json.loads((xp_folder / "history.json").read_text())[0]
    assert sorted(p.name for p in music.iterdir()) == [f"tone_{i:02d}.wav" for i in range(5)]  # untouched


def test_warm_start_loads_a_trained_codec_and_fine_tunes_it(finished_xp, make_tiny_solver):
    """The route of a user with trained weights (docs/research/INDEPENDENCE.md): `continue_from` a checkpoint loads
    its weights, not its epoch, and the loss then trains them (a local checkpoint: nothing downloads)."""
    import torch

    xp_folder, _ = finished_xp
    checkpoint = xp_folder / "checkpoint.th"
    solver = make_tiny_solver(*RECIPE, f"continue_from={checkpoint}", "mmd.weight=10", "mmd.alignment=parallel")
    solver.restore()  # what the solver's run does first
    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["best_state"]["model"]
    for key, value in solver.model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert solver.epoch == 1
    (metrics,) = train_steps(solver, next(iter(solver.dataloaders["train"])), 1)
    assert metrics["mmd_weight"] == 10 and metrics["mmd_grad_ratio"] > 0


def test_warm_start_into_another_model_names_the_keys_that_differ(finished_xp, make_tiny_solver):
    xp_folder, _ = finished_xp
    solver = make_tiny_solver(*PLAIN_CODEC, f"continue_from={xp_folder / 'checkpoint.th'}")
    with pytest.raises(ConfigError, match=r"(?s)do not fit.*not in the checkpoint.*"
                                          r"encodec\.autoencoder: 'seanet_spectral_interp' there, 'seanet' here"):
        solver.restore()
