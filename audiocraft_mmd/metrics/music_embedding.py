"""Music embeddings of audio clips: musicnn's 200-d penultimate features, one per 3 s patch.

Any sample rate and channel count is converted to 16 kHz mono first (AudioCraft's
``convert_audio``: channel mean, julius resampling). A clip shorter than one patch but at least
``min_seconds`` long is embedded whole (musicnn's network accepts any length; its features are
pooled over time), so that short generations still count; compare sets of clips of equal length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import typing as tp

import torch

from .musicnn import PATCH_FRAMES, SAMPLE_RATE, Musicnn, load_musicnn, log_mel, patches

SILENCE = 1e-5  # peak amplitude under which a clip is called silent (about -100 dBFS)


class AudioInputError(ValueError):
    """A clip cannot be embedded (silent, too short, non-finite); the message says which and why."""


@dataclass
class EmbeddingSet:
    """Embeddings of several clips.

    Attributes:
        embeddings: ``[N, 200]``, the patches of every clip, clip after clip.
        groups: The group of each row: one per clip name (the bootstrap resamples whole groups).
        names: The distinct clip names (e.g. paths), in order.
        seconds: Audio seconds embedded.
    """
    embeddings: torch.Tensor
    groups: tp.List[int] = field(default_factory=list)
    names: tp.List[str] = field(default_factory=list)
    seconds: float = 0.0


class MusicEmbedder:
    """Embeds audio with the musicnn port.

    Args:
        model: ``MSD_musicnn`` (default, trained on the Million Song Dataset) or ``MTT_musicnn``.
        min_seconds: Shortest clip accepted (shorter than 3 s: embedded as one patch).
        batch_size: Patches per forward pass.
        device: Torch device.
    """

    dim = Musicnn.units

    def __init__(self, model: str = "MSD_musicnn", min_seconds: float = 1.0, batch_size: int = 32,
                 device: tp.Union[str, torch.device] = "cpu"):
        self.model_name = model
        self.network = load_musicnn(model).to(device)
        self.min_seconds = min_seconds
        self.batch_size, self.device = batch_size, device

    @torch.no_grad()
    def embed(self, wav: torch.Tensor, sample_rate: int, name: str = "clip") -> torch.Tensor:
        """``[P, 200]`` embeddings of one clip ``[C, T]`` (or ``[T]``) at ``sample_rate``.

        Raises:
            AudioInputError: If the clip is silent, non-finite or shorter than ``min_seconds``.
        """
        from audiocraft.data.audio_utils import convert_audio

        if wav.dim() == 1:
            wav = wav[None]
        if wav.numel() == 0 or not torch.isfinite(wav).all():
            raise AudioInputError(f"{name}: empty or non-finite audio")
        mono = convert_audio(wav.float(), int(sample_rate), SAMPLE_RATE, 1)[0].to(self.device)
        if mono.abs().max() < SILENCE:
            raise AudioInputError(f"{name}: silent (peak amplitude below {SILENCE:g})")
        seconds = mono.shape[-1] / SAMPLE_RATE
        if seconds < self.min_seconds:
            raise AudioInputError(f"{name}: {seconds:.2f} s is shorter than the {self.min_seconds:g} s minimum")
        spectrogram = log_mel(mono)
        pieces = patches(spectrogram) if spectrogram.shape[0] >= PATCH_FRAMES else spectrogram[None]
        outputs = [self.network(pieces[i:i + self.batch_size])["penultimate"]
                   for i in range(0, pieces.shape[0], self.batch_size)]
        return torch.cat(outputs).cpu()

    def embed_many(self, clips: tp.Iterable[tp.Tuple[str, torch.Tensor, int]],
                   progress: tp.Optional[tp.Callable[[int, str, int], None]] = None) -> EmbeddingSet:
        """Embeds ``(name, wav, sample_rate)`` clips; ``progress(index, name, patches)`` after each.

        Clips of the same name (pieces of one track) form one group of the bootstrap.
        """
        rows, groups, names, seconds = [], [], [], 0.0
        group_of: tp.Dict[str, int] = {}
        for index, (name, wav, sample_rate) in enumerate(clips):
            embedding = self.embed(wav, sample_rate, name)
            rows.append(embedding)
            groups += [group_of.setdefault(name, len(group_of))] * embedding.shape[0]
            if name not in names:
                names.append(name)
            seconds += wav.shape[-1] / sample_rate
            if progress is not None:
                progress(index, name, embedding.shape[0])
        if not rows:
            raise AudioInputError("no audio to embed")
        return EmbeddingSet(torch.cat(rows), groups, names, seconds)
