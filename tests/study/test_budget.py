"""The codec's budget (:mod:`audiocraft_mmd.study.budget`): learning curves stored per XP and the budget at
which each figure stops changing more than between two seeds."""

import dataclasses
import json

import pytest

from audiocraft_mmd.study import budget
from audiocraft_mmd.study.measurements import MeasurementError, MeasurementStore, from_json, to_json
from audiocraft_mmd.study.results import learning_curve
from common_utils.study_measurements import codec_measurement

FIGURE_KEYS = [key for key, _, _ in budget.FIGURES]


def point(epoch: int, minutes: float, level: float) -> dict:
    """Evaluate figures that all follow ``level`` (falling distances, rising SI-SNR)."""
    return {"epoch": epoch, "minutes": minutes, **{key: level for key in FIGURE_KEYS}}


def stored_budget(tmp_path, levels: dict) -> MeasurementStore:
    """Both seeds' XPs stored, each with a curve of ``levels[seed]`` per evaluation (every 10 epochs)."""
    store = MeasurementStore(tmp_path / "measurements")
    for index, seed in enumerate((2036, 2037)):
        record = codec_measurement(f"budget{index}", budget.overrides(seed), si_snr=3., mi=0.5)
        curve = [point(10 * (n + 1), 20. * (n + 1), level) for n, level in enumerate(levels[seed])]
        store.save(dataclasses.replace(record, curve=curve))
    return MeasurementStore(store.folder)  # read back from the files


@pytest.mark.parametrize("means, gaps, expected", [
    ([5., 3., 2., 1.9, 1.85], [0.2] * 5, 1500),   # steps 2, 1, 0.1, 0.05: within the gap from 1500 updates
    ([5., 3., 2., 1.9, 1.5], [0.2] * 5, None),    # the last step (0.4) is still larger than the gap
    ([5., 5.1, 4., 3.95, 3.9], [0.2] * 5, 1500),  # a small first step does not count: a larger one follows
    ([5., 4.9, 4.85, 4.8, 4.8], [0.2] * 5, 500),  # within the gap from the start
    ([5., 3., 2., 1.9, 1.85], [0.2, 0.2, 0.2, 0.2, 0.01], None),  # the gap at the later evaluation decides
])
def test_stopped_at_is_the_budget_from_which_every_later_step_is_within_the_seed_gap(means, gaps, expected):
    updates = [500, 1000, 1500, 2000, 2500]
    assert budget.stopped_at(updates, means, gaps) == expected


def test_tables_show_each_seed_per_evaluation_the_steps_and_where_each_figure_stops(tmp_path):
    store = stored_budget(tmp_path, {2036: [5., 3., 2., 1.9, 1.85, 1.84], 2037: [5.2, 3.2, 2.2, 2.1, 2.05, 2.0]})
    text = budget.tables(budget.collect(store))
    rows = [line for line in text.splitlines() if line.startswith("| 500 ") or line.startswith("| 3000 ")]
    assert rows[0].startswith("| 500 | +5.00 / +5.20 | 5.000 / 5.200 |") and rows[0].endswith("| 20 / 20 |")
    assert rows[1].endswith("| 120 / 120 |")
    assert "| 1000 → 1500 | -1.00 (0.20) | -1.000 (0.200) |" in text
    # Steps 2, 1, 0.1, 0.05, 0.03 against a gap of 0.2: within it from 1500 updates on, for every figure.
    assert "SI-SNR (dB): 1500; mel: 1500;" in text and "MI delay (bit): 1500." in text


def test_a_figure_still_changing_at_the_last_evaluation_is_said_so(tmp_path):
    store = stored_budget(tmp_path, {2036: [5., 4., 3.], 2037: [5., 4., 3.]})
    assert "mel: still changing at 1500" in budget.tables(budget.collect(store))


def test_unfinished_grid_is_named_and_gives_no_report_section(tmp_path):
    store = MeasurementStore(tmp_path / "measurements")
    store.save(dataclasses.replace(codec_measurement("budget0", budget.overrides(2036), si_snr=3., mi=0.5),
                                   curve=[point(10, 20., 1.), point(20, 40., 0.5)]))
    assert "not finished (seed 2037)" in budget.tables(budget.collect(store))
    assert budget.report_section(store) is None
    assert budget.report_section(stored_budget(tmp_path / "both", {2036: [2., 1.], 2037: [2., 1.]})) is not None


def test_the_command_prints_the_tables_from_the_stored_measurements(tmp_path, capsys):
    store = stored_budget(tmp_path, {2036: [2., 1.5, 1.4], 2037: [2.1, 1.6, 1.45]})
    assert budget.main(["--from-measurements", "--measurements", str(store.folder)]) == 0
    assert "| 1500 |" in capsys.readouterr().out


def test_learning_curve_accumulates_minutes_and_needs_two_evaluations(tmp_path):
    class XP:
        folder = tmp_path

    history = [{"train": {"duration": 60.}}, {"train": {"duration": 60.}, "evaluate": {"duration": 30., "mel": 2.}},
               {"train": {"duration": 60.}}, {"train": {"duration": 60.}, "evaluate": {"duration": 30., "mel": 1.}}]
    (tmp_path / "history.json").write_text(json.dumps(history))
    assert learning_curve(XP) == [{"epoch": 2, "minutes": 2.5, "duration": 30., "mel": 2.},
                                  {"epoch": 4, "minutes": 5., "duration": 30., "mel": 1.}]
    (tmp_path / "history.json").write_text(json.dumps(history[:2]))
    assert learning_curve(XP) == []


def test_a_stored_curve_round_trips_and_a_malformed_one_is_named(tmp_path):
    record = dataclasses.replace(codec_measurement("abc", {"seed": 1}, si_snr=3., mi=0.5),
                                 curve=[point(10, 20., 1.), point(20, 40., 0.5)])
    path = tmp_path / "abc.json"
    assert from_json(to_json(record), path) == record
    data = json.loads(to_json(record))
    data["curve"] = {"epoch": 10}
    with pytest.raises(MeasurementError, match="abc.json: 'curve' is a dict, not a list"):
        from_json(json.dumps(data), path)
