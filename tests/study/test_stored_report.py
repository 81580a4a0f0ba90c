"""The study's report rebuilt from stored measurements alone: the same file from the records in memory, from
their files, and from the command with ``--from-measurements``, without any XP."""

import pytest

from audiocraft_mmd.study import independence, results, specs, summary
from audiocraft_mmd.study.__main__ import main
from audiocraft_mmd.study.independence_specs import BASELINE, LMS, REPEAT_SEED_OFFSET, SCHEDULE, experiments
from audiocraft_mmd.study.measurements import MeasurementStore, shown_path
from audiocraft_mmd.study.report import write_report

from common_utils import codec_measurement, dependence_report, lm_measurement

SCALE = specs.SMOKE
SEED = SCALE.seeds[0]
BEST = specs.CodecSpec(10., "delay", "dim", SEED)


def smoke_study_records():
    """Every measurement of the smoke study: the baseline and the MMD codec, their LMs (generating) and the
    LM probe's LMs (validation only); the MMD codec measured a day later."""
    baseline = SCALE.baseline(SEED)
    codecs = {"base": (baseline, 5.25, 0.4, "2026-12-05"), "mmd": (BEST, 4.75, 0.3, "2026-12-06")}
    records = [codec_measurement(sig, SCALE.codec_overrides(spec), si_snr, mi, lags=SCALE.lags, day=day)
               for sig, (spec, si_snr, mi, day) in codecs.items()]
    for codec_sig, shift in (("base", 0.), ("mmd", -0.25)):
        for pattern, ce in (("parallel", [3.0, 5.0, 5.0, 5.0]), ("depth", [3.5, 4.0, 4.0, 4.0])):
            records.append(lm_measurement(f"{codec_sig}-{pattern}", codec_sig, pattern, SEED,
                                          [v + shift for v in ce]))
            for probe in SCALE.lm_probes:
                records.append(lm_measurement(f"{codec_sig}-{pattern}-probe", codec_sig, pattern, SEED,
                                              [v + shift + 0.1 for v in ce], extra=probe.overrides, generates=False))
    return records


def stored(folder, records):
    store = MeasurementStore(folder)
    for record in records:
        store.save(record)
    return store


def report_text(store, tmp_path, name):
    study = results.collect("smoke", store)
    out = tmp_path / name / "RESULTS.md"
    write_report(study, results.main_comparison(study), out, out.parent / "figures", tmp_path / "discussion.md",
                 measured_on=store.latest_day(), measurements=shown_path(store.folder))
    return out.read_text()


def test_report_from_stored_files_is_the_report_from_the_records(tmp_path):
    (tmp_path / "discussion.md").write_text("## Discussion\n\nWritten by hand.\n")
    records = smoke_study_records()
    direct = report_text(stored(tmp_path / "measurements", records), tmp_path, "direct")
    assert "| baseline seed=2036 | base | 5.25 |" in direct and "| λ=10 delay dim seed=2036 | mmd | 4.75 |" in direct
    assert "| λ=10 delay dim seed=2036 | depth | mmd-depth | 3.625 |" in direct  # the MMD codec's LMs, generating
    assert "| twice the updates | baseline seed=2036 | parallel | base-parallel-probe | 4.600 |" in direct
    assert "the latest measured on 2026-12-06" in direct and "Incomplete" not in direct
    assert direct.rstrip().endswith("Written by hand.")
    from_files = report_text(MeasurementStore(tmp_path / "measurements"), tmp_path, "from_files")
    assert from_files == direct

    out = tmp_path / "command" / "RESULTS.md"
    assert main(["report", "--scale", "smoke", "--from-measurements", "--measurements", str(tmp_path / "measurements"),
                 "--out", str(out), "--discussion", str(tmp_path / "discussion.md")]) == 0
    assert out.read_text() == direct
    assert (out.parent / "figures" / "dependence_vs_lambda.png").stat().st_size > 0


def test_report_from_stored_files_lists_what_is_not_stored(tmp_path):
    records = [r for r in smoke_study_records() if r.sig != "mmd-depth"]
    text = report_text(stored(tmp_path / "measurements", records), tmp_path, "partial")
    assert "**Incomplete:** not finished yet: depth on λ=10 delay dim seed=2036." in text


def independence_records():
    """The first seed's baseline and one-run schedule, their parallel and depth LMs, and the baseline's LMs
    again at another seed (the LMs' spread)."""
    seed = specs.SMALL.seeds[0]
    baseline = codec_measurement("base", specs.SMALL.codec_overrides(specs.SMALL.baseline(seed)), 5.25, 0.4)
    table = experiments(seed, lambda spec: "base")
    schedule = codec_measurement("sched", table[SCHEDULE][0], 4.75, 0.2, entropy=6.9)
    for codec, mi in ((baseline, 0.5), (schedule, 0.3)):  # and on other music
        codec.dependence[independence.dependence_folder(str(results.OTHER_MUSIC))] = dependence_report(mi, 7.)
    records = [baseline, schedule]
    for codec_sig, lm_seed, shift in (("base", seed, 0.), ("sched", seed, 0.1), ("base", seed + REPEAT_SEED_OFFSET,
                                                                                  0.01)):
        for name, ce in (("parallel", [3.0, 5.0, 5.0, 5.0]), ("depth", [3.5, 4.0, 4.0, 4.0])):
            pattern, extra = LMS[name]
            records.append(lm_measurement(f"{codec_sig}-{name}-{lm_seed}", codec_sig, pattern, lm_seed,
                                          [v + shift for v in ce], extra=extra, generates=False))
    return records


def test_independence_section_from_stored_files_is_the_section_from_the_records(tmp_path):
    records = independence_records()
    direct = independence.report_section(stored(tmp_path / "measurements", records))
    assert direct is not None
    assert f"| 2036 | {SCHEDULE} | sched | 4.75 |" in direct
    assert f"| 2036 | {BASELINE} | parallel | base-parallel-2036 | 4.500 |" in direct
    assert "- seed 2036, one run: warmup 250, ratio 1 against baseline (500 updates): parallel − depth (codebooks " \
           "2..K) +1.000 → +1.000 nats" in direct
    assert "- parallel on baseline (500 updates) seed=2036, CE 2..K at LM seeds 2036 / 2136: 5.000 / 5.010" in direct
    unfinished = [line for line in direct.splitlines() if "| not finished |" in line]
    assert unfinished and all(line.split(" | ")[2] == "-" for line in unfinished)  # no signature without the XP
    assert independence.report_section(MeasurementStore(tmp_path / "measurements")) == direct
    assert "on other music" not in direct  # not asked for
    other = independence.report_section(MeasurementStore(tmp_path / "measurements"), str(results.OTHER_MUSIC))
    assert "The same on other music, not in the training data (`egs/other_music_16k_mono/evaluate`):" in other
    assert f"| 2036 | {SCHEDULE} | sched | 6.81 | 0.360 [0.350, 0.370] |" in other  # the other music's figures


def test_independence_command_reads_stored_files_alone(tmp_path, capsys):
    stored(tmp_path / "measurements", independence_records())
    out = tmp_path / "tables.md"
    assert independence.main(["--from-measurements", "--measurements", str(tmp_path / "measurements"), "--measure",
                              "--lms", "--out", str(out)]) == 0
    text = out.read_text()
    assert f"| 2036 | {SCHEDULE} | sched |" in text and "LMs (grid independence_lms)" in text
    with pytest.raises(Exception, match="no generation figures"):
        independence.main(["--from-measurements", "--measurements", str(tmp_path / "measurements"), "--lms",
                           "--generate"])


def test_readme_summary_is_generated_between_its_markers_from_the_stored_measurements(tmp_path):
    store = stored(tmp_path / "measurements", smoke_study_records())
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## Results\n\n{summary.START}\nold figures\n{summary.END}\n\nHand-written.\n")
    assert main(["report", "--scale", "smoke", "--from-measurements", "--measurements", str(store.folder),
                 "--out", str(tmp_path / "RESULTS.md"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\n## Results\n\n") and text.endswith(f"{summary.END}\n\nHand-written.\n")
    assert "old figures" not in text
    # The smoke study's figures: MI 0.4 -> 0.3 (-25 %, outside the synthetic interval 0.39-0.41 of every pair's
    # mean), SI-SNR 5.25 -> 4.75, depth beats parallel by 1.0 on codebooks 2..K on both codecs (nothing closed).
    assert "changed the delay-aligned mean pairwise MI by −25.0% (seed 2036;" in text
    assert "outside the baseline's 95 % interval at every seed" in text
    assert "SI-SNR −0.50 dB" in text
    assert ("parallel LM by 1.000 nats per code on codebooks 2..K; on the best MMD codec's by 1.000: it closes 0%"
            in text)
    # Regenerating changes nothing; a README without the markers is refused by name, and left as it was.
    assert main(["report", "--scale", "smoke", "--from-measurements", "--measurements", str(store.folder),
                 "--out", str(tmp_path / "RESULTS.md"), "--readme", str(readme)]) == 0
    assert readme.read_text() == text
    bare = tmp_path / "BARE.md"
    bare.write_text("# No markers\n")
    with pytest.raises(SystemExit, match="BARE.md has no '<!-- study-summary:start -->'"):
        main(["report", "--scale", "smoke", "--from-measurements", "--measurements", str(store.folder),
              "--out", str(tmp_path / "RESULTS.md"), "--readme", str(bare)])
    assert bare.read_text() == "# No markers\n"
