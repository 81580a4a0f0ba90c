"""Evaluate-stage plugins measuring audio quality offline (opt-in through ``evaluate.plugins``).

- ``reconstruction``: ``si_snr_db`` (SI-SNR in dB, higher is better: minus AudioCraft's ``sisnr``
  loss, which the stage already logs as ``sisnr``) and ``mel_distance`` (AudioCraft's
  ``MelSpectrogramL1Loss`` with the solver's ``mel`` config, the validation stage's ``mel``).
- ``bands``: what SI-SNR, carried by the bass, does not see (:mod:`audiocraft_mmd.metrics.spectral`):
  the log-spectral distance and the SNR per frequency band, ``lsd_<low>_<high>`` and
  ``band_snr_<low>_<high>`` (dB; bands 0-250, 250-1000, 1000-2000, 2000-4000 Hz, then octaves), and the
  comb at the codec's frame rate (``comb_db``, a decoder's buzz; ``comb_reference_db``: the music's own).
- ``music_distance``: Fréchet and kernel distances between the musicnn embeddings of the
  references and of the reconstructions (:mod:`audiocraft_mmd.metrics.embedding_distance`, paired:
  a perfect reconstruction reads 0): ``musicnn_frechet``, ``musicnn_kernel``; ``musicnn_skipped``
  counts the pairs left out because a clip was silent. Options in ``evaluate.music_distance`` (``model``).
- ``visqol``: ViSQOL v3 in audio mode (MOS-LQO, 1 to 5) through the ``visqol-python`` package,
  which ships its model; both signals are resampled to 48 kHz. Unlike AudioCraft's
  ``evaluate.metrics.visqol``, it needs no compiled ViSQOL binary. Silent references are left out
  (``visqol_skipped``).
"""

from __future__ import annotations

import typing as tp

import torch

from ..errors import ConfigError
from .evaluation import EvaluationBatch, EvaluationPlugin, register_evaluation_plugin

VISQOL_RATE = 48000
VISQOL_INSTALL = "pip install visqol-python==3.8.0"


@register_evaluation_plugin("reconstruction")
class ReconstructionQuality(EvaluationPlugin):
    """SI-SNR (dB) and mel distance of the reconstructions, averaged over evaluate batches."""

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        from audiocraft.solvers import builders
        self.sisnr = builders.get_loss("sisnr", solver.cfg)
        self.mel = builders.get_loss("mel", solver.cfg).to(solver.device)
        self.sums = {"si_snr_db": 0.0, "mel_distance": 0.0}
        self.count = 0

    def update(self, batch: EvaluationBatch) -> None:
        with torch.no_grad():
            items = batch.audio.shape[0]
            self.sums["si_snr_db"] -= self.sisnr(batch.reconstruction, batch.audio).item() * items
            self.sums["mel_distance"] += self.mel(batch.reconstruction, batch.audio).item() * items
        self.count += items

    def compute(self) -> tp.Dict[str, float]:
        return {name: value / self.count for name, value in self.sums.items()} if self.count else {}


@register_evaluation_plugin("bands")
class BandFidelity(EvaluationPlugin):
    """Per-band log-spectral distance and SNR, and the frame-rate comb, over every evaluate clip."""

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        self.references: tp.List[torch.Tensor] = []
        self.reconstructions: tp.List[torch.Tensor] = []

    def update(self, batch: EvaluationBatch) -> None:
        self.references.append(batch.audio.detach().cpu())
        self.reconstructions.append(batch.reconstruction.detach().cpu()[..., :batch.audio.shape[-1]])

    def compute(self) -> tp.Dict[str, float]:
        if not self.references:
            return {}
        from ..metrics import spectral
        from ..metrics.codec_quality import band_key
        reference, reconstruction = torch.cat(self.references), torch.cat(self.reconstructions)
        rate, frame_rate = int(self.solver.cfg.sample_rate), float(self.solver.model.frame_rate)
        metrics = {}
        for name, figures in (("lsd", spectral.band_lsd(reference, reconstruction, rate)),
                              ("band_snr", spectral.band_snr(reference, reconstruction, rate))):
            metrics.update({f"{name}_{band_key(band)}": value for band, value in zip(figures.bands, figures.values)})
        comb = spectral.frame_rate_comb(reference, reconstruction, rate, frame_rate)
        metrics.update(comb_db=comb.reconstruction_db, comb_reference_db=comb.reference_db)
        return metrics


@register_evaluation_plugin("music_distance")
class MusicDistance(EvaluationPlugin):
    """Fréchet and kernel distances between references and reconstructions in musicnn's embedding."""

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        from ..metrics.music_embedding import MusicEmbedder
        options = solver.cfg.evaluate.get("music_distance") or {}
        self.embedder = MusicEmbedder(str(options.get("model", "MSD_musicnn")), device=solver.device)
        self.sample_rate = int(solver.cfg.sample_rate)
        self.rows: tp.Dict[str, tp.List[torch.Tensor]] = {"reference": [], "reconstruction": []}
        self.groups: tp.Dict[str, tp.List[int]] = {"reference": [], "reconstruction": []}
        self.units, self.skipped = 0, 0

    def update(self, batch: EvaluationBatch) -> None:
        from ..metrics.music_embedding import AudioInputError
        for reference, reconstruction in zip(batch.audio.detach().float(), batch.reconstruction.detach().float()):
            try:
                pair = {"reference": self.embedder.embed(reference, self.sample_rate, "evaluate reference"),
                        "reconstruction": self.embedder.embed(reconstruction, self.sample_rate,
                                                              "evaluate reconstruction")}
            except AudioInputError:  # e.g. a silent segment: the pair is left out and counted
                self.skipped += 1
                continue
            unit = self.units
            self.units += 1
            for name, embedding in pair.items():
                self.groups[name] += [unit] * embedding.shape[0]
                self.rows[name].append(embedding)

    def compute(self) -> tp.Dict[str, float]:
        from ..metrics.embedding_distance import embedding_distances
        if self.units < 2:
            return {"musicnn_skipped": float(self.skipped)}
        # Paired: clip i of both sets is one unit, so a perfect codec reads a kernel distance of 0.
        distances = embedding_distances(torch.cat(self.rows["reference"]), torch.cat(self.rows["reconstruction"]),
                                        self.groups["reference"], self.groups["reconstruction"], draws=0, paired=True)
        metrics = {f"musicnn_{name}": distance.value for name, distance in distances.items()}
        metrics["musicnn_skipped"] = float(self.skipped)
        return metrics


def visqol_api() -> tp.Any:
    """A ViSQOL audio-mode scorer from ``visqol-python``.

    Raises:
        ConfigError: If the package is missing, with the pip command.
    """
    try:
        from visqol import VisqolApi
    except ImportError as error:
        raise ConfigError(f"the visqol evaluate plugin needs the visqol-python package: {VISQOL_INSTALL} "
                          f"({error})") from None
    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol_scores(api: tp.Any, reference: torch.Tensor, degraded: torch.Tensor, sample_rate: int) -> tp.List[float]:
    """MOS-LQO of each item of ``[B, C, T]`` batches (channels averaged, resampled to 48 kHz)."""
    import julius
    scores = []
    for ref, deg in zip(reference.detach().float().cpu(), degraded.detach().float().cpu()):
        ref48 = julius.resample_frac(ref.mean(0), sample_rate, VISQOL_RATE).double().numpy()
        deg48 = julius.resample_frac(deg.mean(0), sample_rate, VISQOL_RATE).double().numpy()
        scores.append(float(api.measure_from_arrays(ref48, deg48, sample_rate=VISQOL_RATE).moslqo))
    return scores


@register_evaluation_plugin("visqol")
class VisqolQuality(EvaluationPlugin):
    """Mean ViSQOL MOS-LQO (audio mode) of the reconstructions: ``visqol_moslqo``."""

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        self.api = visqol_api()
        self.sample_rate = int(solver.cfg.sample_rate)
        self.scores: tp.List[float] = []
        self.skipped = 0

    def update(self, batch: EvaluationBatch) -> None:
        from ..metrics.music_embedding import SILENCE
        audible = batch.audio.detach().abs().amax(dim=(1, 2)) >= SILENCE  # ViSQOL is undefined on silence
        self.skipped += int((~audible).sum())
        if audible.any():
            self.scores += visqol_scores(self.api, batch.audio[audible], batch.reconstruction[audible],
                                         self.sample_rate)

    def compute(self) -> tp.Dict[str, float]:
        metrics = {"visqol_skipped": float(self.skipped)}
        if self.scores:
            metrics["visqol_moslqo"] = sum(self.scores) / len(self.scores)
        return metrics
