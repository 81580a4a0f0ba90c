"""The small-scale reproduction study: run it, and write ``docs/research/RESULTS.md`` from its XPs.

    python -m audiocraft_mmd.study run [--jobs 2]   # stage 1 (codecs), stage 2 (LMs, twice), report
    python -m audiocraft_mmd.study run --probes     # also the probes: study_probes, study_lm_probes
    python -m audiocraft_mmd.study report           # the report alone, from whatever has finished
    python -m audiocraft_mmd.study report --from-measurements   # from the stored measurements alone
    python -m audiocraft_mmd.study independence     # the tables of grids independence, independence_lms
    python -m audiocraft_mmd.study budget           # the learning curve of grid codec_budget

``run`` runs the grids ``study_codecs`` then ``study_lms`` here with :mod:`audiocraft_mmd.grid`'s local
runner (interrupt at will: running it again resumes), then ``report``. On a Slurm cluster run the
grids with ``dora grid`` instead (``study_lms`` twice: LMs on the second seed's best codec wait for
it), then ``report``; ``--scale paper`` reads the paper-scale grids (``study_codecs_paper``,
``study_lms_paper``).

``report`` reads the finished XPs found here and stores every figure it shows in ``measurements/``
beside ``--out`` (``docs/research/measurements/``, or ``--measurements DIR``): one JSON file per XP with
the command, commit and date that measured it, rewritten only when a figure changes. It then builds the
report from the stored files alone: ``report --from-measurements`` rebuilds it, byte for byte, without
any XP (on a clone, in a test). ``run`` stores as it goes, since it ends with ``report``.

Besides the training logs, it measures what they lack, caching it in each XP's folder: pairwise MI of
every codec on the whole evaluate split with jackknife intervals (:mod:`audiocraft_mmd.dependence`,
``study_dependence/report.json``), and for every LM its generation wall-clock and the musicnn kernel
distance of its generations to the evaluate split (:func:`audiocraft_mmd.metrics.lm_measures.measure_lm`,
``study_lm.json``), and the MI between codebooks at growing lags for the baseline and the best codec
(``study_lagged/report.json``). It then writes the markdown report and its figures, and checks the
study's targets against the measurements. At ``--scale small`` it adds the section of grids
``independence`` and ``independence_lms`` when any of their XPs has finished
(:func:`audiocraft_mmd.study.independence.report_section`), and that of grid ``codec_budget`` once
both its XPs have (:func:`audiocraft_mmd.study.budget.report_section`). A hand-written discussion
(``--discussion``, default ``docs/research/study_discussion.md``) is copied in at the end: edit that file,
never the generated one.
The README's results lines, between its ``study-summary`` markers, are generated too (``--readme``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import typing as tp

from ..grid import local
from ..listen import write_page
from ..utils.progress import track
from . import budget, independence
from .measurements import MeasurementStore, shown_path
from .report import write_report
from .results import OTHER_MUSIC, REPO, SCALES, add_generation_options, collect, main_comparison
from .sources import add_source_options, xp_source
from .summary import summary, write_summary

RESULTS = REPO / "docs" / "research" / "RESULTS.md"
README = REPO / "README.md"


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["independence"]:
        return independence.main(argv[1:])
    if argv[:1] == ["budget"]:
        return budget.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.study", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("action", choices=["run", "report", "independence", "budget"],
                        help="independence, budget: see `python -m audiocraft_mmd.study independence --help`, "
                        "`... budget --help`")
    parser.add_argument("--scale", choices=["small", "paper", "smoke"], default="small")
    parser.add_argument("--jobs", type=int, default=1, help="XPs run at once by `run` (threads split between them)")
    parser.add_argument("--probes", action="store_true", help="`run` also runs the scale's probe grids, after stage 2")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=None, help="default: figures/ beside --out")
    parser.add_argument("--discussion", type=Path, default=REPO / "docs" / "research" / "study_discussion.md")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also write the results' summary between the study-summary markers of this file "
                             "(default: the repository's README.md when --out is docs/research/RESULTS.md at the "
                             "small scale; `none`: nowhere)")
    add_generation_options(parser)
    add_source_options(parser, default="measurements/ beside --out")
    parser.add_argument("--listen", type=Path, default=None,
                        help="also write a listening page of the study's codecs there "
                             "(python -m audiocraft_mmd.listen)")
    args = parser.parse_args(argv)
    if args.action == "run" and args.from_measurements:
        parser.error("`run` measures the XPs it trains: --from-measurements is for `report`")
    scale = SCALES[args.scale]
    if args.action == "run":
        grids = (scale.codec_grid, scale.lm_grid, scale.lm_grid, *(scale.probe_grids if args.probes else []))
        for grid in track(grids, "study: grids", note=lambda grid: f"{grid} done"):
            if local(grid, jobs=args.jobs) != 0:
                raise SystemExit(f"Some XPs of grid {grid} failed (see above); fix them and run this again.")
    # The grids of docs/research/INDEPENDENCE.md and grid codec_budget build on the small study's codec: their
    # sections are the small scale's.
    with_sections = args.scale == "small"
    # Beside the report by default: docs/research/measurements for docs/research/RESULTS.md.
    store = args.measurements = args.measurements or MeasurementStore(args.out.parent / "measurements")
    if not args.from_measurements:  # bring the stored measurements up to date with the XPs found here
        source = xp_source(args, argv)
        collect(args.scale, source)
        if with_sections:
            independence.report_section(source, str(OTHER_MUSIC))
            budget.report_section(source)
    # The report is built from the stored measurements alone, so that they regenerate it as it is written.
    results = collect(args.scale, store)
    figures = args.figures or args.out.parent / "figures"
    sections = [independence.report_section(store, str(OTHER_MUSIC)), budget.report_section(store)] \
        if with_sections else []
    comparison = main_comparison(results)
    write_report(results, comparison, args.out, figures, args.discussion, [s for s in sections if s],
                 measured_on=store.latest_day(), measurements=shown_path(store.folder))
    print(f"wrote {args.out} and its figures in {figures}")
    readme = args.readme or (README if args.scale == "small" and args.out.resolve() == RESULTS else None)
    if readme is not None and str(readme) != "none":
        write_summary(readme, summary(results, comparison))
        print(f"wrote the results' summary in {readme}")
    if args.listen is not None and results.codecs:
        print(f"wrote {write_page([codec.sig for codec in results.codecs], args.listen, overwrite=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
