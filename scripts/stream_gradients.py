"""How much of the independence loss's gradient reaches a codec's encoder?

    ./mmd-env python scripts/stream_gradients.py --checkpoint //sig/A [--checkpoint //sig/B ...] \
        --data egs/debian_music_16k_mono/evaluate

For each codec, on batches of 1 s segments of the manifest's audio (the model in training mode, so the
streams are straight-through as in training), computes the loss (delay-aligned, with the kernel options of
the codec's ``mmd`` config) and its gradients with respect to each stream, g_k, and to the encoder output, g_x. Prints

- ``reach`` = |g_x| / sqrt(Σ_k |g_k|²): 1 when every stream has its own path to the encoder (a grouped
  quantizer: g_x is the g_k side by side); for an RVQ, whose K straight-through streams all have the
  identity as Jacobian with respect to the encoder output, g_x = Σ_k g_k, so ``reach`` is below 1 as
  much as the per-stream gradients cancel;
- ``cos`` = mean cosine between the per-stream gradients (RVQ only: they live in the same space);
- for steps down g_x of a few sizes, the loss change that really happens (the quantizer re-run on the
  moved latent: hard codes) over the change the straight-through gradient predicts (first order):
  1 when the estimator is right, 0 when the step changes no code.

Run from the repository root (``//sig/`` references resolve in the Dora folder).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


STEPS = (0.01, 0.03, 0.1)  # step sizes along the gradient, as fractions of the latent's RMS


def segments(data: str, sample_rate: int, seconds: float, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` random ``seconds``-long mono segments of the manifest's tracks, ``[count, 1, S]``."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    from audiocraft_mmd.dependence import read_manifest

    generator = torch.Generator().manual_seed(seed)
    tracks = []
    for entry in read_manifest(data):
        wav, rate = audio_read(entry.path)
        tracks.append(convert_audio(wav, rate, sample_rate, 1))
    length = int(seconds * sample_rate)
    tracks = [t for t in tracks if t.shape[-1] > length]
    pieces = []
    for _ in range(count):
        track = tracks[int(torch.randint(len(tracks), (1,), generator=generator))]
        start = int(torch.randint(track.shape[-1] - length, (1,), generator=generator))
        pieces.append(track[:, start:start + length])
    return torch.stack(pieces)


def measure(reference: str, data: str, batches: int, batch_size: int) -> dict:
    from audiocraft_mmd.dependence import load_codec
    from audiocraft_mmd.losses.mmd import mmd_independence
    from audiocraft_mmd.metrics import standard_alignments
    from audiocraft_mmd.quantization import capture_streams

    codec = load_codec(reference)
    model, adapter = codec.model, codec.adapter
    model.train()  # straight-through streams, as in training (EMA updates only touch this copy)
    audio = segments(data, adapter.sample_rate, 1.0, batches * batch_size)
    def loss_of(captured) -> torch.Tensor:
        streams = torch.stack(captured.stream_list, dim=1)
        return mmd_independence(streams, delays=standard_alignments(streams.shape[1])["delay"], clamp=False,
                                **codec.kernel_options).loss

    def loss_at(latent: torch.Tensor) -> float:
        """The loss on the streams the quantizer really gives for ``latent`` (hard codes, no EMA update)."""
        model.eval()
        with torch.no_grad(), capture_streams(model) as captured:
            adapter.quantizer()(latent, adapter.frame_rate)
        model.train()
        return float(loss_of(captured))

    reach, cosines, realized = [], [], {step: [] for step in STEPS}
    for batch in audio.split(batch_size):
        with capture_streams(model) as captured:
            adapter.quantize(batch)
        loss = loss_of(captured)
        *stream_grads, latent_grad = torch.autograd.grad(loss, [*captured.stream_list, captured.latent])
        reach.append(float(latent_grad.norm() / torch.stack([g.norm() for g in stream_grads]).norm()))
        if all(g.shape == latent_grad.shape for g in stream_grads):
            cosines += [float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
                        for a, b in itertools.combinations(stream_grads, 2)]
        # A step down the gradient: what the straight-through estimator predicts against what happens.
        latent = captured.latent.detach()
        before = loss_at(latent)
        for step in STEPS:
            delta = -step * latent.pow(2).mean().sqrt() * latent_grad / latent_grad.pow(2).mean().sqrt()
            predicted = float((latent_grad * delta).sum())
            realized[step].append((loss_at(latent + delta) - before) / predicted)
    return {"reach": sum(reach) / len(reach), "cos": sum(cosines) / len(cosines) if cosines else None,
            "realized": {step: sum(v) / len(v) for step, v in realized.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="//sig/SIG or a checkpoint (repeatable)")
    parser.add_argument("--data", required=True, help="manifest folder egs/<name>/<split>")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    for reference in args.checkpoint:
        result = measure(reference, args.data, args.batches, args.batch_size)
        cos = "-" if result["cos"] is None else f"{result['cos']:+.3f}"
        realized = ", ".join(f"{step:g}: {ratio:+.2f}" for step, ratio in result["realized"].items())
        print(f"{reference}: reach {result['reach']:.3f}, mean cosine between stream gradients {cos}; "
              f"realized / predicted loss change for steps of (fraction of the latent's RMS) {realized}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
