"""``python -m audiocraft_mmd.plot``: an XP's training curves, or several XPs' overlaid, from ``history.json``.

    python -m audiocraft_mmd.plot --xp SIG [--xp SIG ...] [--out DIR]

Reads Dora's ``history.json`` of each XP (``outputs/xps/SIG/``: one entry per epoch, stage -> metrics)
and writes one PNG per group of metrics that any of them logged, each metric in its own panel against
the epoch: ``reconstruction.png`` (SI-SNR, mel, L1, multi-scale spectral), ``codebooks.png`` (usage and
entropy per codebook), ``dependence.png`` (pairwise MI and normalised MI under both alignments),
``loss.png`` (the independence loss: ``mmd``, ``mmd_loss``, ``mmd_grad_ratio``, ...) and ``lm.png``
(cross-entropy and perplexity, in total and per codebook). Colours are XPs (labelled by signature and
the overrides that tell them apart), line styles are stages (train, valid, evaluate, generate).
Default ``--out``: ``<XP folder>/curves`` for one XP, ``curves/<SIG>_<SIG>...`` for several.

From Python (e.g. a report or a listening page): :func:`plot_curves` takes XP folders and returns
the PNGs written per group.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path
import sys
import typing as tp

from .errors import ConfigError
from .utils.xps import xp_folder

if tp.TYPE_CHECKING:
    from matplotlib.typing import LineStyleType

HISTORY_NAME = "history.json"
# Panels of each figure, in order: metric names or fnmatch patterns (sorted matches).
GROUPS: tp.Dict[str, tp.Tuple[str, ...]] = {
    "reconstruction": ("sisnr", "si_snr_db", "mel", "mel_distance", "l1", "msspec"),
    "codebooks": ("usage_q*", "entropy_q*", "entropy_mean", "entropy_min"),
    "dependence": ("mi_parallel", "mi_delay", "nmi_parallel", "nmi_delay", "tc*"),
    "loss": ("mmd", "mmd_loss", "mmd_grad_ratio", "mmd_estimate", "mmd_adv", "mmd_adv_critic"),
    "lm": ("ce", "ppl", "ce_q*", "ppl_q*"),
}
STAGE_STYLES: tp.Dict[str, LineStyleType] = {"train": "-", "valid": "--", "evaluate": ":", "generate": "-."}
# Overrides left out of the labels: they do not change what an XP learns.
_LABEL_IGNORED = ("num_threads", "device", "dataset.num_workers", "datasource.", "prepare_data.")


class PlotError(ConfigError):
    """A missing XP, or a missing, empty or unreadable history; the message names the file."""


def read_history(folder: Path) -> tp.List[tp.Dict[str, tp.Dict[str, tp.Any]]]:
    """The XP's per-epoch history (a list of stage -> metrics)."""
    path = Path(folder) / HISTORY_NAME
    if not path.exists():
        raise PlotError(f"{path} does not exist: the XP has not finished an epoch yet")
    try:
        history = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PlotError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(history, list) or not history:
        raise PlotError(f"{path} holds no epoch (empty history): nothing to plot yet")
    return history


def curves(history: tp.Sequence[tp.Dict[str, tp.Dict[str, tp.Any]]]
           ) -> tp.Dict[tp.Tuple[str, str], tp.Tuple[tp.List[int], tp.List[float]]]:
    """``(stage, metric) -> (epochs, values)`` of every numeric metric of the history."""
    found: tp.Dict[tp.Tuple[str, str], tp.Tuple[tp.List[int], tp.List[float]]] = {}
    for epoch, stages in enumerate(history, start=1):
        for stage, metrics in stages.items():
            for name, value in (metrics or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    epochs, values = found.setdefault((stage, name), ([], []))
                    epochs.append(epoch)
                    values.append(float(value))
    return found


def group_metrics(names: tp.Iterable[str], patterns: tp.Sequence[str]) -> tp.List[str]:
    """The metric names matching ``patterns``, in the patterns' order (each pattern's matches sorted)."""
    names = set(names)
    ordered: tp.List[str] = []
    for pattern in patterns:
        for name in sorted(fnmatch.filter(names, pattern)):
            if name not in ordered:
                ordered.append(name)
    return ordered


def xp_labels(folders: tp.Sequence[Path]) -> tp.List[str]:
    """``SIG override ...`` per XP: the overrides of its ``.argv.json`` that not all XPs share."""
    argvs = []
    for folder in folders:
        argv_file = folder / ".argv.json"
        argv = json.loads(argv_file.read_text()) if argv_file.exists() else []
        argvs.append([arg for arg in argv if not arg.startswith(_LABEL_IGNORED)])
    shared = set.intersection(*(set(argv) for argv in argvs)) if len(argvs) > 1 else set()
    labels = []
    for folder, argv in zip(folders, argvs):
        own = " ".join(arg.replace("compression_model_checkpoint=", "codec=") for arg in argv if arg not in shared)
        labels.append(f"{folder.name} {own}"[:70].strip())
    return labels


def plot_curves(folders: tp.Sequence[tp.Union[str, Path]], out: tp.Union[str, Path],
                labels: tp.Optional[tp.Sequence[str]] = None) -> tp.Dict[str, Path]:
    """Draws the curves of the XPs in ``folders`` (overlaid) into ``out/<group>.png``.

    Args:
        folders: XP folders (``outputs/xps/SIG``), each with a ``history.json``.
        out: Folder of the PNGs (created).
        labels: Legend entry per XP; default: :func:`xp_labels`.

    Returns:
        Group name -> PNG written, for every group of :data:`GROUPS` with at least one metric.

    Raises:
        PlotError: A missing, empty or unreadable history (named), or no plottable metric at all.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    paths = [Path(folder) for folder in folders]
    if not paths:
        raise PlotError("no XP to plot")
    all_curves = [curves(read_history(path)) for path in paths]
    labels = list(labels) if labels is not None else xp_labels(paths)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    out = Path(out)
    written: tp.Dict[str, Path] = {}
    for group, patterns in GROUPS.items():
        names = group_metrics({name for found in all_curves for _, name in found}, patterns)
        if not names:
            continue
        columns = min(4, len(names))
        rows = -(-len(names) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows + 0.6), squeeze=False)
        stages_seen: tp.List[str] = []
        for ax, name in zip(axes.flat, names):
            for index, found in enumerate(all_curves):
                for stage, style in STAGE_STYLES.items():
                    if (stage, name) not in found:
                        continue
                    epochs, values = found[(stage, name)]
                    ax.plot(epochs, values, linestyle=style, color=colors[index % len(colors)],
                            marker="o" if len(epochs) < 12 else None, markersize=3)
                    if stage not in stages_seen:
                        stages_seen.append(stage)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        handles = [Line2D([], [], color=colors[index % len(colors)], label=label) for index, label in enumerate(labels)]
        handles += [Line2D([], [], color="grey", linestyle=STAGE_STYLES[stage], label=stage)
                    for stage in STAGE_STYLES if stage in stages_seen]
        fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
        legend_inches = 0.1 + 0.2 * -(-len(handles) // 4)  # legend rows of 4 entries, above the panels
        fig.tight_layout(rect=(0, 0, 1, 1 - legend_inches / fig.get_figheight()))
        out.mkdir(parents=True, exist_ok=True)
        written[group] = out / f"{group}.png"
        fig.savefig(written[group], dpi=100)
        plt.close(fig)
    if not written:
        listed = ", ".join(str(path / HISTORY_NAME) for path in paths)
        raise PlotError(f"no metric of {', '.join(GROUPS)} in {listed}")
    return written


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.plot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xp", action="append", required=True,
                        help="an XP's signature (outputs/xps/SIG) or folder; repeat to overlay several")
    parser.add_argument("--out", help="folder of the PNGs (default: <XP folder>/curves, or curves/<SIG>_<SIG>...)")
    args = parser.parse_args(argv)
    try:
        folders = [xp_folder(sig) for sig in args.xp]
        out = Path(args.out) if args.out else (
            folders[0] / "curves" if len(folders) == 1 else Path("curves") / "_".join(f.name for f in folders))
        written = plot_curves(folders, out)
    except ConfigError as error:  # PlotError, XPNotFound
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
