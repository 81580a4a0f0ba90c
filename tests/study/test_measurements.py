"""The stored measurements: their files round-trip, a malformed one is named, the store finds and keeps records."""

import json
import math

import pytest

from audiocraft_mmd.study.measurements import LMKey, MeasurementError, MeasurementStore, Provenance, from_json, to_json

from common_utils import codec_measurement, lm_measurement, provenance


def test_records_round_trip_through_their_files(tmp_path):
    codec = codec_measurement("abc123", {"solver": "compression/study", "mmd.bandwidths": (1., 2.)}, 5.5, 0.3,
                              lags=(0, 1, 50))
    codec.evaluate["mmd_estimate"] = float("nan")  # an undefined figure is stored as such
    lm = lm_measurement("lm456", "abc123", "depth", 2036, [3.0, 4.0, 4.5, 5.0], extra=("optim.lr=1e-3",))
    store = MeasurementStore(tmp_path)
    for record in (codec, lm):
        store.save(record)
    again = MeasurementStore(tmp_path).records()
    assert sorted(again) == ["abc123", "lm456"]
    assert again["lm456"] == lm
    assert again["abc123"].overrides["mmd.bandwidths"] == [1., 2.]  # as JSON gives tuples back
    assert math.isnan(again["abc123"].evaluate["mmd_estimate"])
    assert to_json(again["abc123"]) == (tmp_path / "abc123.json").read_text()
    stored = json.loads((tmp_path / "lm456.json").read_text())
    assert stored["kind"] == "lm" and stored["provenance"]["commit"] == "0" * 40


def test_the_store_finds_codecs_by_overrides_and_lms_by_key(tmp_path):
    store = MeasurementStore(tmp_path)
    store.save(codec_measurement("abc123", {"seed": 1, "mmd.bandwidths": (1., 2.)}, 5., 0.3))
    store.save(lm_measurement("lm456", "abc123", "parallel", 1, [3.0, 4.0], extra=("a=1",)))
    assert store.codec({"mmd.bandwidths": [1., 2.], "seed": 1}).sig == "abc123"
    assert store.codec({"mmd.bandwidths": [1., 2.], "seed": 2}) is None
    assert store.lm(LMKey("abc123", "parallel", 1, ("a=1",)), list).sig == "lm456"
    assert store.lm(LMKey("abc123", "parallel", 1), list) is None
    assert store.latest_day() == "2026-12-05"


def test_a_file_is_rewritten_only_when_its_figures_change(tmp_path):
    store = MeasurementStore(tmp_path)
    first = codec_measurement("abc123", {"seed": 1}, 5., 0.3)
    first.evaluate["mmd_estimate"] = float("nan")
    store.save(first)
    same = codec_measurement("abc123", {"seed": 1}, 5., 0.3, day="2026-12-07")
    same.evaluate["mmd_estimate"] = float("nan")
    assert store.save(same).provenance.day == "2026-12-05"  # NaN equals NaN here: nothing was re-measured
    store.save(codec_measurement("abc123", {"seed": 1}, 6., 0.3, day="2026-12-07"))
    assert MeasurementStore(tmp_path).records()["abc123"].provenance.day == "2026-12-07"


@pytest.mark.parametrize("change, message", [
    (lambda data: data.pop("evaluate"), "a codec measurement without 'evaluate'"),
    (lambda data: data.pop("kind"), "no 'kind'"),
    (lambda data: data.update(surprise=1), "unknown keys 'surprise'"),
    (lambda data: data["provenance"].pop("commit"), "'provenance' must have"),
    (lambda data: data.update(minutes="ten"), "'minutes' is a str, not a int or float"),
    (lambda data: data["dependence"]["study_dependence"].pop("alignments"),
     "dependence measurement 'study_dependence' without 'alignments'"),
    (lambda data: data["dependence"].update(study_dependence_other_music={"usage": {}}),
     "dependence measurement 'study_dependence_other_music' without 'fast_slow'"),
])
def test_a_malformed_file_is_named_with_what_is_wrong(tmp_path, change, message):
    data = json.loads(to_json(codec_measurement("abc123", {"seed": 1}, 5., 0.3)))
    change(data)
    (tmp_path / "abc123.json").write_text(json.dumps(data))
    with pytest.raises(MeasurementError, match=f"abc123.json: .*{message}"):
        MeasurementStore(tmp_path).records()


@pytest.mark.parametrize("change, message", [
    (lambda data: data["validation"].pop("valid_ce_per_codebook"), "validation without 'valid_ce_per_codebook'"),
    (lambda data: data["generation"].pop("rtf"), "generation without 'rtf'"),
    (lambda data: data.update(generation=[]), "'generation' is a list, not a dict or NoneType"),
])
def test_an_lm_file_without_a_figure_the_report_reads_is_named(tmp_path, change, message):
    data = json.loads(to_json(lm_measurement("lm456", "abc123", "depth", 1, [3.0, 4.0])))
    change(data)
    (tmp_path / "lm456.json").write_text(json.dumps(data))
    with pytest.raises(MeasurementError, match=f"lm456.json: {message}"):
        MeasurementStore(tmp_path).records()


def test_a_file_that_is_not_json_or_not_its_xp_is_named(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(MeasurementError, match="broken.json: not JSON"):
        from_json("{", tmp_path / "broken.json")
    (tmp_path / "broken.json").write_text(to_json(codec_measurement("abc123", {"seed": 1}, 5., 0.3)))
    with pytest.raises(MeasurementError, match="broken.json: holds XP abc123"):
        MeasurementStore(tmp_path).records()


def test_a_figure_the_report_needs_and_the_store_lacks_names_the_file(tmp_path):
    store = MeasurementStore(tmp_path)
    codec = store.save(codec_measurement("abc123", {"seed": 1}, 5., 0.3))
    with pytest.raises(MeasurementError, match="abc123.json: no dependence measurement 'study_lagged'"):
        store.dependence(codec, "study_lagged", None, 10.)
    lm = store.save(lm_measurement("lm456", "abc123", "parallel", 1, [3.0], generates=False))
    with pytest.raises(MeasurementError, match="lm456.json: no generation figures"):
        store.generation(lm, "parallel on the baseline")


def test_provenance_names_this_checkout():
    made = Provenance.current("python -m audiocraft_mmd.study report")
    assert len(made.commit.removesuffix("-dirty")) == 40 and made.day == made.date[:10]
    assert made.command.endswith("report")
    assert provenance("2026-12-01").day == "2026-12-01"
