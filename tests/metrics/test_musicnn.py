"""The PyTorch port of musicnn against outputs of the original (TensorFlow) network.

``tests/assets/musicnn_golden.npz`` holds the original's outputs on deterministic signals; it was
written by ``scripts/check_musicnn_port.py --write-golden`` under TensorFlow 2.15.1 (see the file's
``provenance`` entry and the script's docstring). No TensorFlow is needed here.
"""

import importlib.util

import numpy as np
import pytest
import torch

from common_utils import ASSETS, REPO, require_modules

require_modules("librosa", "musicnn", install="pip install --no-deps musicnn==0.1.0", module_level=True)

from audiocraft_mmd.metrics import musicnn as port  # noqa: E402
from audiocraft_mmd.metrics.tf_checkpoint import CheckpointFormatError, read_checkpoint, read_index  # noqa: E402


GOLDEN = ASSETS / "musicnn_golden.npz"


def _script():
    spec = importlib.util.spec_from_file_location("check_musicnn_port", REPO / "scripts" / "check_musicnn_port.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", port.MODELS)
def test_port_matches_original_outputs(model, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCRAFT_MMD_CACHE", str(tmp_path))
    golden = np.load(GOLDEN)
    assert "TensorFlow 2.15.1" in str(golden["provenance"])
    network = port.load_musicnn(model)
    signals = _script().test_signals()
    assert len(signals) == 5
    for name, signal in signals.items():
        with torch.no_grad():
            out = network.patch_outputs(torch.from_numpy(signal), port.SAMPLE_RATE)
        for output in ("taggram", "penultimate", "mean_pool"):
            expected = golden[f"{model}/{name}/{output}"]
            assert out[output].shape == expected.shape == (2, expected.shape[-1])
            # Measured: max abs error 3.5e-5 (penultimate), 4.4e-6 (tags); float32 summation order.
            np.testing.assert_allclose(out[output].numpy(), expected, atol=3e-4, rtol=1e-4,
                                       err_msg=f"{model}/{name}/{output}")
    # Second load comes from the converted cache and gives the same weights.
    cached = port.load_musicnn(model)
    assert list((tmp_path / "musicnn").glob(f"{model}.*.pt"))
    for key, value in network.state_dict().items():
        assert torch.equal(value, cached.state_dict()[key])


def test_log_mel_matches_librosa():
    import librosa
    signal = _script().test_signals()["melody"][:40000]
    reference = librosa.feature.melspectrogram(y=signal, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    reference = np.log10(10000 * reference.astype(np.float16).astype(np.float32) + 1)
    ours = port.log_mel(torch.from_numpy(signal)).numpy()
    assert ours.shape == reference.shape == (157, 96)
    np.testing.assert_allclose(ours, reference, atol=2e-3)  # at most a float16 rounding flip


def test_patches_drop_the_tail_and_short_audio_is_refused():
    network = port.Musicnn()
    assert port.patches(torch.zeros(187 * 2 + 100, 96)).shape == (2, 187, 96)
    with pytest.raises(ValueError, match="shorter than musicnn's 3 s patch"):
        network.patch_outputs(torch.zeros(16000), 16000)


def test_checkpoint_reader(tmp_path):
    prefix = str(port.package_checkpoint("MSD_musicnn")) + "/"
    entries = read_index(prefix + ".index")
    assert entries["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    tensors = read_checkpoint(prefix, ["dense/kernel"])
    assert tensors["dense/kernel"].shape == (1506, 200) and np.isfinite(tensors["dense/kernel"]).all()
    with pytest.raises(CheckpointFormatError, match="no variable"):
        read_checkpoint(prefix, ["nope"])
    bad = tmp_path / "bad.index"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointFormatError, match="bad magic"):
        read_index(bad)


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(port.MusicnnUnavailable, match="pip install --no-deps musicnn==0.1.0"):
        port.package_checkpoint("MSD_musicnn")
