"""The long commands' progress: a tqdm bar on a terminal, counted lines with an estimate in a log."""

import io
import re

from audiocraft_mmd.utils.progress import Progress, format_seconds, track


class FakeClock:
    def __init__(self):
        self.now = 100.

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_count_and_estimate_what_is_left():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(4, "dependence", stream=stream, min_interval=0, clock=clock)
    assert not progress.tty  # a StringIO is not a terminal
    for index in range(4):
        clock.now += 10
        progress.step(f"track{index}.wav")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[dependence] 1/4 track0.wav, 10 s elapsed, ~30 s left",
        "[dependence] 2/4 track1.wav, 20 s elapsed, ~20 s left",
        "[dependence] 3/4 track2.wav, 30 s elapsed, ~10 s left",
        "[dependence] 4/4 track3.wav, 40 s elapsed",
    ]
    assert "\r" not in stream.getvalue()


def test_log_lines_are_throttled_but_first_and_last_always_print():
    stream, clock = io.StringIO(), FakeClock()
    with Progress(100, "prepare_data", stream=stream, min_interval=5, clock=clock) as progress:
        for _ in range(100):
            clock.now += 1
            progress.step()
    counts = [int(re.match(r"\[prepare_data\] (\d+)/100", line).group(1)) for line in stream.getvalue().splitlines()]
    assert counts[0] == 1 and counts[-1] == 100
    assert counts == [1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 76, 81, 86, 91, 96, 100]


def test_unknown_total_counts_without_estimate():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(None, "grid local", stream=stream, min_interval=0, clock=clock)
    clock.now += 65
    progress.step("f02917f1")
    assert stream.getvalue() == "[grid local] 1 f02917f1, 1 min 05 s elapsed\n"


def test_terminal_gets_a_bar_redrawn_in_place():
    stream = Terminal()
    with Progress(3, "audio_distance", stream=stream) as progress:
        assert progress.tty
        for index in range(3):
            progress.step(f"clip{index}")
    out = stream.getvalue()
    assert "\r" in out  # redrawn in place, not one line per step
    assert "audio_distance" in out and "3/3" in out and "100%" in out
    assert "[audio_distance]" not in out  # not the log format


def test_track_wraps_an_iterable():
    stream = io.StringIO()
    items = list(track(["a", "b"], "export", note=str, stream=stream, min_interval=0))
    assert items == ["a", "b"]
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == ["[export] 1/2 a", "[export] 2/2 b"]


def test_format_seconds():
    assert [format_seconds(s) for s in (4.4, 59.6, 61, 3725)] == ["4 s", "1 min 00 s", "1 min 01 s", "1 h 02 min"]
