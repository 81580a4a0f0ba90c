"""A static page to listen to codecs and LMs: ``python -m audiocraft_mmd.listen --xp SIG [--xp SIG ...] --out DIR``.

For a few clips of the evaluate split, the reference next to each codec XP's reconstruction (the
clip encoded and decoded by the XP's checkpoint) and to Opus at the first codec's bitrate and twice it
(``--opus``), and for each LM XP its generations (the latest epoch of its ``samples/``), each with an
audio player and a spectrogram; above them, each XP's headline figures from its ``history.json``
(SI-SNR, mel distance, codebook entropies, pairwise MI under both alignments where measured, the LM's
validation cross-entropy) and, for the codecs and Opus on the page's clips, the log-spectral distance
and SNR per band and the frame-rate comb. Audio and images are
copied into DIR, so the folder opens anywhere (``DIR/index.html``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import html
import json
from pathlib import Path
import shutil
import sys
import typing as tp

import torch

from .errors import ConfigError
from .metrics import codec_quality as cq
from .metrics.opus import OpusUnavailable
from .data.sources import read_audio_meta, xp_samples
from .utils.checkpoints import load_compression_model, load_solver_checkpoint
from .utils.progress import Progress
from .utils.xps import xp_folder

PAGE = "index.html"


class ListenError(ConfigError):
    """A bad argument or input of the command; the message says what to change."""


@dataclass
class XPView:
    """One XP as the page shows it."""
    reference: str
    folder: Path
    cfg: tp.Any
    history: tp.List[dict]
    is_lm: bool
    name: str
    audio: tp.List[Path] = field(default_factory=list)  # written into the page's folder
    figures: tp.Dict[str, str] = field(default_factory=dict)


def load_xp(reference: str) -> XPView:
    try:
        folder = xp_folder(reference)
    except ConfigError as error:
        raise ListenError(f"--xp {reference}: {error}") from None
    history_path = folder / "history.json"
    if not history_path.exists():
        raise ListenError(f"--xp {reference}: {history_path} does not exist (has the XP run an epoch?)")
    history = json.loads(history_path.read_text())
    try:
        cfg = load_solver_checkpoint(str(folder))["xp.cfg"]
    except ConfigError as error:
        raise ListenError(f"--xp {reference}: {error}") from None
    is_lm = "musicgen" in str(cfg.get("solver", "")) or cfg.get("compression_model_checkpoint") is not None
    argv = folder / ".argv.json"
    name = " ".join(json.loads(argv.read_text())) if argv.exists() else folder.name
    return XPView(reference, folder, cfg, history, is_lm, name or folder.name)


def latest(history: tp.List[dict], stage: str) -> tp.Tuple[tp.Optional[int], dict]:
    for epoch in range(len(history), 0, -1):
        if stage in history[epoch - 1]:
            return epoch, history[epoch - 1][stage]
    return None, {}


def headline_figures(history: tp.List[dict]) -> tp.Dict[str, str]:
    """The figures a reader compares first, from the last evaluate and valid stages."""
    figures: tp.Dict[str, str] = {}
    epoch, evaluate = latest(history, "evaluate")
    valid_epoch, valid = latest(history, "valid")
    if "si_snr_db" in evaluate or "sisnr" in evaluate:
        figures["SI-SNR (dB)"] = f"{evaluate.get('si_snr_db', -evaluate.get('sisnr', 0.)):.2f}"
    if "mel_distance" in evaluate:
        figures["mel distance"] = f"{evaluate['mel_distance']:.3f}"
    entropies = [evaluate[f"entropy_q{k}"] for k in range(64) if f"entropy_q{k}" in evaluate]
    if entropies:
        figures["entropy per codebook (bit)"] = " / ".join(f"{h:.2f}" for h in entropies)
    lsd = [value for key, value in evaluate.items() if key.startswith("lsd_")]
    if lsd:
        figures["LSD per band (dB)"] = " / ".join(f"{value:.2f}" for value in lsd)
    if "comb_db" in evaluate:
        figures["frame-rate comb (dB)"] = f"{evaluate['comb_db']:+.2f}"
    for key, label in (("mi_parallel", "MI parallel (bit)"), ("mi_delay", "MI delay (bit)")):
        if key in evaluate:
            figures[label] = f"{evaluate[key]:.3f}"
    if figures and epoch is not None:
        figures["evaluated at epoch"] = str(epoch)
    if "ce" in valid:
        figures["valid cross-entropy (nats)"] = f"{valid['ce']:.3f} (epoch {valid_epoch})"
    if not figures and "mel" in valid:
        figures["valid mel distance"] = f"{valid['mel']:.3f} (epoch {valid_epoch})"
    return figures


def pick_clips(data: str, count: int, seconds: float) -> tp.List[tp.Tuple[str, torch.Tensor, int]]:
    """``count`` clips of ``seconds`` from the middle of the manifest's first tracks long enough."""
    from audiocraft.data.audio import audio_read
    try:
        entries = read_audio_meta(data)
    except ConfigError as error:
        raise ListenError(f"--data: {error}") from None
    clips = []
    for entry in sorted(entries, key=lambda e: e.path):
        if entry.duration < seconds:
            continue
        wav, rate = audio_read(entry.path, seek_time=(entry.duration - seconds) / 2, duration=seconds)
        clips.append((Path(entry.path).stem, wav, rate))
        if len(clips) == count:
            break
    if not clips:
        raise ListenError(f"--data {data}: no track lasts {seconds} s (lower --seconds)")
    return clips


def write_wav(path: Path, wav: torch.Tensor, rate: int) -> Path:
    import soundfile as sf
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav.clamp(-1, 1).t().numpy(), rate, subtype="PCM_16")
    return path


def write_spectrogram(path: Path, wav: torch.Tensor, rate: int, max_rate: tp.Optional[int] = None) -> Path:
    """A log-magnitude spectrogram (channels averaged) as a small PNG; its frequency axis goes up to
    half of ``max_rate`` (default ``rate``), so that the page's spectrograms share one scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n_fft = 512 if rate > 16000 else 256
    spec = torch.stft(wav.mean(0), n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)
    db = 20 * torch.log10(spec.abs() + 1e-5)
    figure, axes = plt.subplots(figsize=(4, 1.8), dpi=100)
    axes.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=float(db.max()) - 80,
                extent=(0, wav.shape[-1] / rate, 0, rate / 2000))
    axes.set_ylim(0, (max_rate or rate) / 2000)
    axes.set_xlabel("s", fontsize=7)
    axes.set_ylabel("kHz", fontsize=7)
    axes.tick_params(labelsize=6)
    figure.tight_layout(pad=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


@dataclass
class Rendering:
    """What one system (a codec, or Opus at a bitrate) made of the page's clips, at the codec's format.

    Attributes:
        label: The row's name.
        stem: Its files' name (``clip<i>_<stem>.wav``).
        outputs: One ``[C, T]`` waveform per clip.
        sample_rate: Of the outputs and of ``references``.
        references: The clips converted to that rate and channel count.
        figures: :func:`audiocraft_mmd.metrics.codec_quality.reconstruction_figures` of the outputs.
        kbps: Bitrate (a codec's nominal rate; what Opus spent on these clips).
    """
    label: str
    stem: str
    outputs: tp.List[torch.Tensor]
    sample_rate: int
    references: torch.Tensor
    figures: tp.Dict[str, tp.Any]
    kbps: float


def reconstruct(view: XPView, clips, device: str = "cpu") -> tp.Tuple[Rendering, tp.Any]:
    """The codec XP's reconstruction of each clip (and its model, for its bitrate and frame rate)."""
    from audiocraft.data.audio_utils import convert_audio
    model, _ = load_compression_model(str(view.folder), device)
    rate = int(model.sample_rate)
    references = torch.stack([convert_audio(wav, clip_rate, rate, model.channels) for _, wav, clip_rate in clips])
    outputs, _ = cq.code_clips(model, references.to(device))
    figures = cq.reconstruction_figures(references, outputs.cpu(), rate, float(model.frame_rate))
    rendering = Rendering(view.folder.name, view.folder.name, list(outputs.cpu()), rate, references, figures,
                          cq.codec_kbps(model))
    return rendering, model


def opus_rendering(codec: Rendering, frame_rate: float, multiple: float) -> Rendering:
    """Opus at ``multiple`` times the codec's bitrate on the same clips (:func:`cq.opus_clips`)."""
    outputs, info = cq.opus_clips(codec.references, codec.sample_rate, codec.kbps * multiple)
    figures = cq.reconstruction_figures(codec.references, outputs, codec.sample_rate, frame_rate)
    label = f"Opus {codec.kbps * multiple:g} kbit/s nominal ({info['payload_kbps']:.2f} spent)"
    return Rendering(label, f"opus_{multiple:g}x", list(outputs), codec.sample_rate, codec.references, figures,
                     info["payload_kbps"])


def generations(view: XPView, count: int) -> tp.List[Path]:
    try:
        return xp_samples(view.folder)[:count]
    except ConfigError as error:
        raise ListenError(f"--xp {view.reference}: LM XP without generations: {error}") from None


def player(src: str, image: str, caption: str) -> str:
    return (f'<figure><figcaption>{html.escape(caption)}</figcaption>'
            f'<audio controls preload="auto" src="{html.escape(src)}"></audio>'
            f'<img class="spec" src="{html.escape(image)}" alt="spectrogram of {html.escape(caption)}"></figure>')


def band_table(renderings: tp.Sequence[Rendering]) -> str:
    """Per-band log-spectral distance and SNR, comb, mel distance and SI-SNR of every rendering of the clips."""
    if not renderings:
        return ""
    bands = list(renderings[0].figures["lsd_db"])
    rows = []
    for rendering in renderings:
        figures = rendering.figures
        cells = [html.escape(rendering.label), f"{rendering.kbps:.2f}",
                 *[f"{figures['lsd_db'][band]:.2f}" for band in bands],
                 " / ".join(f"{figures['snr_db'][band]:+.1f}" for band in bands),
                 f"{figures['comb_db']:+.2f}", f"{figures['mel_distance']:.3f}", f"{figures['si_snr_db']:+.2f}"]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = ["system", "kbit/s", *[f"LSD {band} Hz" for band in bands], "SNR per band", "comb", "mel", "SI-SNR"]
    return ("<h2>Across the band, on these clips</h2><p>Log-spectral distance (dB, lower is better) and SNR (dB) "
            "per band; comb: the output's excess at multiples of the frame rate (dB, a decoder's buzz). SI-SNR is "
            "carried by the bass.</p><table><tr>" + "".join(f"<th>{name}</th>" for name in head) + "</tr>"
            + "".join(rows) + "</table>")


def render(views: tp.List[XPView], clips: tp.List[tp.Tuple[str, str, str]],
           rows: tp.Dict[str, tp.List[tp.Tuple[str, str]]], lm_rows: tp.Dict[str, tp.List[tp.Tuple[str, str]]],
           data: tp.Optional[str], bands: str = "", note: str = "") -> str:
    keys = list(dict.fromkeys(key for view in views for key in view.figures))
    head = "".join(f"<th>{html.escape(key)}</th>" for key in keys)
    body = "".join(
        f"<tr><td><b>{html.escape(view.folder.name)}</b><br><small>{html.escape(view.name)}</small></td>"
        f"<td>{'LM' if view.is_lm else 'codec'}</td>"
        + "".join(f"<td>{html.escape(view.figures.get(key, '–'))}</td>" for key in keys) + "</tr>"
        for view in views)
    parts = [f"<table><tr><th>XP</th><th>kind</th>{head}</tr>{body}</table>", bands]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    if clips:
        parts.append(f"<h2>Reconstructions of evaluate clips</h2><p>From {html.escape(str(data))}.</p>")
        for index, (name, audio, image) in enumerate(clips):
            cells = [player(audio, image, f"reference: {name}")]
            cells += [player(a, i, f"{sig}") for sig, (a, i) in ((sig, pairs[index]) for sig, pairs in rows.items())]
            parts.append(f"<div class=row>{''.join(cells)}</div>")
    for sig, items in lm_rows.items():
        parts.append(f"<h2>Generations of LM {html.escape(sig)}</h2><div class=row>"
                     + "".join(player(a, i, Path(a).stem) for a, i in items) + "</div>")
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;font-size:13px}.row{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}"
             "figure{margin:0}figcaption{font-size:13px}audio{display:block;width:400px}.spec{display:block;width:400px}")
    return ("<!DOCTYPE html><html><head><meta charset=utf-8><title>Listen: "
            + html.escape(", ".join(view.folder.name for view in views))
            + f'</title><link rel="icon" href="data:,"><style>{style}</style></head><body>'
            + "<h1>Listen to codecs and LMs</h1>" + "".join(parts) + "</body></html>\n")


def write_page(references: tp.Sequence[str], out: Path, data: tp.Optional[str] = None, clips: int = 4,
               seconds: float = 5., overwrite: bool = False, opus: tp.Sequence[float] = (1., 2.)) -> Path:
    """Writes ``out/index.html`` with its audio and spectrograms; returns the page's path. ``opus``: Opus
    renderings of the clips at these multiples of the first codec's bitrate, beside the reconstructions."""
    if (out / PAGE).exists() and not overwrite:
        raise ListenError(f"{out / PAGE} exists: give --overwrite to replace it, or another --out")
    if clips < 1 or seconds <= 0:
        raise ListenError("--clips must be at least 1 and --seconds positive")
    views = [load_xp(reference) for reference in references]  # every XP checked before anything is written
    codecs = [view for view in views if not view.is_lm]
    picked: tp.List[tp.Tuple[str, torch.Tensor, int]] = []
    if codecs:
        if data is None:
            data = str(codecs[0].cfg.datasource.evaluate)
        picked = pick_clips(data, clips, seconds)
    lm_files = {view.folder.name: generations(view, clips) for view in views if view.is_lm}
    if out.exists() and overwrite:
        for sub in ("audio", "spectrograms"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for view in views:
        view.figures = headline_figures(view.history)

    max_rate = max([rate for _, _, rate in picked] + [int(view.cfg.sample_rate) for view in codecs], default=None)

    def add(stem: str, wav: torch.Tensor, rate: int) -> tp.Tuple[str, str]:
        write_wav(out / "audio" / f"{stem}.wav", wav, rate)
        write_spectrogram(out / "spectrograms" / f"{stem}.png", wav, rate, max_rate)
        return f"audio/{stem}.wav", f"spectrograms/{stem}.png"

    systems = len(codecs) + (len(opus) if codecs else 0)
    counter = Progress(len(picked) * (1 + systems) + sum(map(len, lm_files.values())), "listen")
    clip_cells = []
    for index, (name, wav, rate) in enumerate(picked):
        clip_cells.append((name, *add(f"clip{index}_reference", wav, rate)))
        counter.step(f"reference {name}")
    renderings, note = [], ""
    for view in codecs:
        rendering, model = reconstruct(view, picked)
        renderings.append(rendering)
        if len(renderings) == 1 and opus:
            try:
                renderings += [opus_rendering(rendering, float(model.frame_rate), multiple) for multiple in opus]
            except OpusUnavailable as error:
                note = f"No Opus renderings: {error}."
                print(f"note: {note}", file=sys.stderr)
    rows = {}
    for rendering in renderings:
        pairs = []
        for index, wav in enumerate(rendering.outputs):
            pairs.append(add(f"clip{index}_{rendering.stem}", wav, rendering.sample_rate))
            counter.step(f"{rendering.label} clip {index}")
        rows[rendering.label] = pairs
    lm_rows = {}
    from audiocraft.data.audio import audio_read
    for sig, files in lm_files.items():
        items = []
        for index, path in enumerate(files):
            wav, rate = audio_read(path)
            audio = out / "audio" / f"{sig}_gen{index}{path.suffix.lower()}"
            shutil.copyfile(path, audio)
            image = write_spectrogram(out / "spectrograms" / f"{sig}_gen{index}.png", wav, rate)
            items.append((f"audio/{audio.name}", f"spectrograms/{image.name}"))
            counter.step(f"{sig} generation {index}")
        lm_rows[sig] = items
    counter.close()
    (out / PAGE).write_text(render(views, clip_cells, rows, lm_rows, data, band_table(renderings), note))
    return out / PAGE


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.listen", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--xp", action="append", required=True,
                        help="//sig/SIG, SIG or XP folder of a codec or LM XP (repeat for several)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (index.html, audio/, spectrograms/)")
    parser.add_argument("--data", help="manifest of the clips to reconstruct (default: the first codec's "
                                       "datasource.evaluate)")
    parser.add_argument("--clips", type=int, default=4, help="clips (and generations per LM) to show")
    parser.add_argument("--seconds", type=float, default=5., help="length of each clip, from the track's middle")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing page in --out")
    parser.add_argument("--opus", default="1,2", help="Opus renderings at these multiples of the first codec's "
                                                      "bitrate ('' for none)")
    args = parser.parse_args(argv)
    try:
        multiples = [float(value) for value in args.opus.split(",") if value.strip()]
    except ValueError:
        print(f"error: --opus must be comma-separated numbers, got {args.opus!r}", file=sys.stderr)
        return 2
    try:
        page = write_page(args.xp, args.out, args.data, args.clips, args.seconds, args.overwrite, multiples)
    except ListenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {page}: open it in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
