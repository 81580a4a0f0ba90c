"""The dependence figure: per codec, normalised pairwise MI as K×K heatmaps (parallel and delay
alignments side by side) next to per-codebook entropy and usage. Matplotlib only (Agg backend)."""

from __future__ import annotations

from pathlib import Path
import typing as tp

from .dependence import DependenceReport


def plot_dependence(reports: tp.Sequence[tp.Tuple[str, DependenceReport]], path: tp.Union[str, Path],
                    alignments: tp.Sequence[str] = ("parallel", "delay")) -> Path:
    """Writes the figure for one or more labelled reports (one row each) to ``path`` (PNG).

    All heatmaps share one colour scale, so codecs compare at a glance; each cell shows the
    normalised MI (MI / min(H_i, H_j)) and, below it, the MI in bits.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(reports)
    top = max([0.05] + [float(value) for _, report in reports for name in alignments
                        for value in report.alignments[name].matrix("normalized").nan_to_num(0).flatten()])
    figure, axes = plt.subplots(rows, len(alignments) + 1, figsize=(4.2 * (len(alignments) + 1), 3.8 * rows),
                                squeeze=False)
    for row, (label, report) in enumerate(reports):
        for column, name in enumerate(alignments):
            alignment = report.alignments[name]
            normalized = alignment.matrix("normalized")
            bits = alignment.matrix("mi")
            axis = axes[row][column]
            image = axis.imshow(normalized.numpy(), vmin=0, vmax=top, cmap="magma_r")
            size = alignment.num_codebooks
            for i in range(size):
                for j in range(size):
                    if i != j:
                        axis.text(j, i, f"{float(normalized[i, j]):.2f}\n{float(bits[i, j]):.2f} b",
                                  ha="center", va="center", fontsize=7,
                                  color="white" if float(normalized[i, j]) > 0.6 * top else "black")
            axis.set_xticks(range(size))
            axis.set_yticks(range(size))
            axis.set_xlabel("codebook j")
            axis.set_ylabel("codebook i")
            axis.set_title(f"{label}\n{name} (delays {alignment.delays}): MI / min(H_i, H_j)", fontsize=8)
            figure.colorbar(image, ax=axis, fraction=0.046)
        usage = report.usage
        axis = axes[row][-1]
        positions = list(range(len(usage.entropy)))
        axis.bar(positions, usage.entropy, color="tab:blue", label="entropy (bits)")
        axis.axhline(usage.max_entropy, color="gray", linestyle="--", label=f"log2({usage.bins})")
        for k, (entropy, used) in enumerate(zip(usage.entropy, usage.usage)):
            axis.text(k, entropy, f"{entropy:.2f} b\n{100 * used:.0f}% used", ha="center", va="bottom", fontsize=7)
        axis.set_xticks(positions)
        axis.set_xlabel("codebook")
        axis.set_ylim(0, usage.max_entropy * 1.45)  # headroom for the labels and the legend
        axis.set_title(f"{label}\nentropy and usage ({usage.frames} frames)", fontsize=8)
        axis.legend(fontsize=7, loc="upper center", ncol=2)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
