"""musicnn (Pons & Serra, 2019) in PyTorch, with the trained weights shipped in the ``musicnn`` package.

The PyPI package ``musicnn`` 0.1.0 (ISC licence) holds TensorFlow checkpoints of music-tagging
networks trained on the Million Song Dataset (``MSD_musicnn``) and MagnaTagATune (``MTT_musicnn``).
Its own code needs TensorFlow 1.x-style graphs (TF 2.15 at the latest) and pins ``numpy<1.17``; this
module reimplements the network and its preprocessing in torch and reads the checkpoint with
:mod:`.tf_checkpoint`, so only the package's files are needed (``pip install --no-deps
musicnn==0.1.0``), no TensorFlow and no download. The weights are converted once to a torch file
in ``$AUDIOCRAFT_MMD_CACHE/musicnn/``.

What the original computes, reproduced here (checked against its outputs by
``scripts/check_musicnn_port.py`` and ``tests/test_musicnn.py``):

- audio at 16 kHz; power mel spectrogram as ``librosa.feature.melspectrogram`` with its defaults
  (centred Hann STFT, 512 points, hop 256, zero padding, 96 Slaney mel bands to 8 kHz); the values
  rounded to float16, then ``log10(10000 x + 1)`` in float32 (numpy < 2 promotes there);
- non-overlapping patches of 187 frames (3 s), the tail shorter than a patch dropped;
- per patch: batch-normalised input; a front end of timbral filters (7 x 38 and 7 x 67 mel bins,
  204 each) and temporal filters (128, 64, 32 frames, 51 each), each ReLU, batch norm, max over
  frequency; a mid end of three 7-frame convolutions (64 filters, residual); max and mean over time
  of the 753 stacked features; batch norm, dense 200 + ReLU + batch norm (the *penultimate*
  features, the embedding used for audio distances); dense to 50 tag logits.
"""

from __future__ import annotations

import functools
from pathlib import Path
import typing as tp

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..utils.atomic import torch_save_atomic

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s, 16 kHz, hop 256, n_fft 512) + 1, as the original
BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
MODELS = ("MSD_musicnn", "MTT_musicnn")
CONVERSION_VERSION = 1  # bump when the conversion changes: cached files of older versions are redone


class MusicnnUnavailable(ConfigError):
    """The ``musicnn`` package (its weight files) is not installed; the message gives the pip command."""


def package_checkpoint(model: str) -> Path:
    """Checkpoint prefix of ``model`` inside the installed ``musicnn`` package (no import of its code,
    which would import TensorFlow)."""
    import importlib.util

    if model not in MODELS:
        raise ConfigError(f"unknown musicnn model {model!r}; available: {list(MODELS)}")
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise MusicnnUnavailable("the musicnn weights are not installed: pip install --no-deps musicnn==0.1.0 "
                                 "(--no-deps: its numpy<1.17 pin is not needed by this port)")
    folder = Path(list(spec.submodule_search_locations)[0]) / model
    if not (folder / ".index").exists():
        raise MusicnnUnavailable(f"{folder}/.index is missing: reinstall with pip install --no-deps --force-reinstall "
                                 "musicnn==0.1.0")
    return folder


@functools.lru_cache(maxsize=1)
def _mel_filters() -> torch.Tensor:
    import librosa
    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS))


def log_mel(audio: torch.Tensor) -> torch.Tensor:
    """musicnn's input: ``[..., frames, 96]`` log-compressed mel spectrogram of 16 kHz audio ``[..., samples]``."""
    filters = _mel_filters().to(audio.device)
    shape = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1]).float()
    window = torch.hann_window(N_FFT, periodic=True, device=audio.device)
    spec = torch.stft(flat, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    mel = torch.einsum("mf,bft->btm", filters, spec.abs() ** 2)
    # float16 rounding as the original stores its spectrogram; the log then runs in float32.
    mel = mel.half().float()
    return torch.log10(10000 * mel + 1).reshape(*shape, -1, N_MELS)


def patches(log_mel_frames: torch.Tensor) -> torch.Tensor:
    """Non-overlapping 187-frame patches ``[P, 187, 96]`` of one ``[frames, 96]`` spectrogram."""
    count = log_mel_frames.shape[0] // PATCH_FRAMES if log_mel_frames.shape[0] >= PATCH_FRAMES else 0
    return log_mel_frames[:count * PATCH_FRAMES].reshape(count, PATCH_FRAMES, N_MELS)


class BatchNorm(nn.Module):
    """Inference-time batch normalisation over the last dimension (TF's axis=-1)."""

    # Buffers registered in __init__.
    gamma: torch.Tensor
    beta: torch.Tensor
    moving_mean: torch.Tensor
    moving_variance: torch.Tensor

    def __init__(self, channels: int):
        super().__init__()
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            self.register_buffer(name, torch.zeros(channels))

    def forward(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[dim] = -1
        scale = self.gamma * torch.rsqrt(self.moving_variance + BN_EPSILON)
        shift = self.beta - self.moving_mean * scale
        return x * scale.view(shape) + shift.view(shape)


class Musicnn(nn.Module):
    """The musicnn network (64 mid-end filters, 200 penultimate units, 50 tags).

    Layer names follow the checkpoint's variables (``conv2d_5``, ``batch_normalization_6``, ...), in
    the order the original builds them. Weights are buffers: load them with :func:`load_musicnn`.
    """

    timbral = ((38, 204), (67, 204))  # (mel bins, filters) of the 7-frame timbral filters
    temporal = (128, 64, 32)  # frames of the temporal filters, 51 each
    temporal_filters = 51
    midend_filters = 64
    units = 200
    tags = 50

    def __init__(self):
        super().__init__()
        convs = [(7, bins, 1, filters) for bins, filters in self.timbral]
        convs += [(length, 1, 1, self.temporal_filters) for length in self.temporal]
        frontend = sum(f for _, f in self.timbral) + len(self.temporal) * self.temporal_filters
        convs += [(7, frontend, 1, self.midend_filters)] + [(7, self.midend_filters, 1, self.midend_filters)] * 2
        self.kernel_shapes = convs
        for index, shape in enumerate(convs):
            self.register_buffer(f"conv2d_{index}_kernel", torch.zeros(shape))
            self.register_buffer(f"conv2d_{index}_bias", torch.zeros(shape[-1]))
        channels = [1] + [f for *_, f in convs] + [2 * (frontend + 3 * self.midend_filters), self.units]
        self.norms = nn.ModuleList(BatchNorm(c) for c in channels)
        self.register_buffer("dense_kernel", torch.zeros(2 * (frontend + 3 * self.midend_filters), self.units))
        self.register_buffer("dense_bias", torch.zeros(self.units))
        self.register_buffer("dense_1_kernel", torch.zeros(self.units, self.tags))
        self.register_buffer("dense_1_bias", torch.zeros(self.tags))

    def _conv(self, index: int, x: torch.Tensor, time_padding: tp.Tuple[int, int]) -> torch.Tensor:
        """TF conv2d (NHWC kernel [kh, kw, in, out]) on ``x`` [B, 1, T, F], zero-padded in time; ReLU."""
        kernel = getattr(self, f"conv2d_{index}_kernel").permute(3, 2, 0, 1)
        x = F.pad(x, (0, 0, *time_padding))
        return F.relu(F.conv2d(x, kernel, getattr(self, f"conv2d_{index}_bias")))

    def forward(self, spectrogram: torch.Tensor) -> tp.Dict[str, torch.Tensor]:
        """Outputs of patches ``[B, 187, 96]``: ``taggram`` [B, 50] (sigmoid), ``penultimate`` [B, 200],
        ``mean_pool`` and ``max_pool`` [B, 753]."""
        x = self.norms[0](spectrogram.unsqueeze(1), dim=1)  # [B, 1, T, 96], one channel
        front = []
        for index in range(len(self.timbral) + len(self.temporal)):
            length = self.kernel_shapes[index][0]
            # Timbral filters: 3 frames of zeros each side ("valid" over frequency); temporal ones:
            # TF's "same" padding, the extra frame of an even kernel after.
            padding = (3, 3) if index < len(self.timbral) else ((length - 1) // 2, length // 2)
            y = self._conv(index, x, padding)  # [B, filters, T, F']
            y = self.norms[index + 1](y, dim=1)
            front.append(y.amax(dim=3))  # [B, filters, T]
        front_features = torch.cat(front, dim=1)  # [B, 561, T]
        midend = [front_features]
        h = front_features
        first = len(self.timbral) + len(self.temporal)
        for step in range(3):
            index = first + step
            y = self._conv(index, h.unsqueeze(1).transpose(2, 3), (3, 3))  # [B, 64, T, 1]
            y = self.norms[index + 1](y, dim=1).squeeze(3)
            h = y if step == 0 else y + h
            midend.append(h)
        features = torch.cat(midend, dim=1)  # [B, 753, T]
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF's flatten of [B, 753, 2]
        pooled = self.norms[-2](pooled)
        penultimate = self.norms[-1](F.relu(pooled @ self.dense_kernel + self.dense_bias))
        logits = penultimate @ self.dense_1_kernel + self.dense_1_bias
        return {"taggram": torch.sigmoid(logits), "penultimate": penultimate, "mean_pool": mean_pool,
                "max_pool": max_pool}

    def patch_outputs(self, audio: torch.Tensor, sample_rate: int) -> tp.Dict[str, torch.Tensor]:
        """Outputs per 3 s patch of one mono signal ``[samples]``, resampled to 16 kHz if needed.

        Raises:
            ValueError: If the audio is shorter than one patch (3 s).
        """
        if sample_rate != SAMPLE_RATE:
            import julius
            audio = julius.resample_frac(audio, int(sample_rate), SAMPLE_RATE)
        frames = patches(log_mel(audio))
        if frames.shape[0] == 0:
            raise ValueError(f"{audio.shape[-1] / SAMPLE_RATE:.2f} s of audio is shorter than musicnn's 3 s patch")
        return self(frames)

    def load_checkpoint_tensors(self, tensors: tp.Dict[str, "tp.Any"]) -> None:
        """Copies the checkpoint's variables (TF names) into the buffers."""
        for index in range(len(self.kernel_shapes)):
            for part in ("kernel", "bias"):
                name = f"conv2d/{part}" if index == 0 else f"conv2d_{index}/{part}"
                getattr(self, f"conv2d_{index}_{part}").copy_(torch.from_numpy(tensors[name]))
        for index, norm in enumerate(self.norms):
            prefix = "batch_normalization" if index == 0 else f"batch_normalization_{index}"
            for part in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(norm, part).copy_(torch.from_numpy(tensors[f"{prefix}/{part}"]))
        for prefix, attribute in (("dense", "dense"), ("dense_1", "dense_1")):
            for part in ("kernel", "bias"):
                getattr(self, f"{attribute}_{part}").copy_(torch.from_numpy(tensors[f"{prefix}/{part}"]))


def _cache_file(model: str) -> Path:
    from ..utils.paths import cache_dir
    return cache_dir() / "musicnn" / f"{model}.v{CONVERSION_VERSION}.pt"


def load_musicnn(model: str = "MSD_musicnn", cache: bool = True) -> Musicnn:
    """The port of ``model`` with the weights of the installed ``musicnn`` package, in eval mode.

    The checkpoint is read once and cached as a torch file (keyed by the source's size and mtime).

    Raises:
        MusicnnUnavailable: If the package is not installed (the message gives the pip command).
    """
    from .tf_checkpoint import read_checkpoint

    folder = package_checkpoint(model)
    network = Musicnn()
    source = folder / ".data-00000-of-00001"
    stamp = f"{source.stat().st_size}:{source.stat().st_mtime_ns}" if source.exists() else ""
    path = _cache_file(model)
    if cache and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("source") == stamp:
            network.load_state_dict(state["weights"])
            return network.eval()
    tensors = read_checkpoint(str(folder) + "/")
    network.load_checkpoint_tensors(tensors)
    if cache:
        torch_save_atomic({"source": stamp, "weights": network.state_dict()}, path)
    return network.eval()
