"""Progress of the long commands (data preparation, dependence, audio_distance, export,
compare_patterns, the study, ``grid local``): a tqdm bar on a terminal, plain counted lines in a log.

    with Progress(len(tracks), "dependence") as progress:
        for track in tracks:
            ...
            progress.step(f"{frames} frames")

On a terminal the bar redraws in place; otherwise (a log file, a pipe, Slurm's output) each step
prints one line ``[dependence] 3/10 track.wav, 12 s elapsed, ~28 s left``, at most one per
``min_interval`` seconds apart from the first and the last, so that a log stays readable.
"""

import sys
import time
import typing as tp


def say(label: str, message: str) -> None:
    """One status line ``[label] message`` on stderr, the commands' way of saying what they do."""
    print(f"[{label}] {message}", file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts ``total`` steps of ``label``; ``step(note)`` after each one.

    ``stream`` defaults to stderr; ``tty`` (default: ``stream.isatty()``) picks the bar or the lines.
    ``enabled=False`` prints nothing (a quiet mode). ``total`` may be None (unknown): the lines then carry
    no estimate. Steps beyond ``total`` are counted without an estimate.
    """

    def __init__(self, total: tp.Optional[int], label: str, stream: tp.Optional[tp.TextIO] = None,
                 tty: tp.Optional[bool] = None, min_interval: float = 1.0,
                 clock: tp.Callable[[], float] = time.monotonic, enabled: bool = True):
        self.total, self.label, self.count, self.enabled = total, label, 0, enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.min_interval, self.clock = min_interval, clock
        self.start = clock()
        self._last_line: tp.Optional[float] = None
        self._bar = None
        if self.tty and enabled:
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=label, file=self.stream, dynamic_ncols=True, leave=True)

    def remaining(self) -> tp.Optional[float]:
        """Seconds left at the mean pace so far; None when unknown."""
        if not self.total or not self.count or self.count >= self.total:
            return None
        return (self.clock() - self.start) / self.count * (self.total - self.count)

    def line(self, note: str = "") -> str:
        count = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        parts = [f"[{self.label}] {count}" + (f" {note}" if note else ""),
                 f"{format_seconds(self.clock() - self.start)} elapsed"]
        left = self.remaining()
        if left is not None:
            parts.append(f"~{format_seconds(left)} left")
        return ", ".join(parts)

    def step(self, note: str = "", count: int = 1) -> None:
        self.count += count
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(count)
            return
        if not self.enabled:
            return
        now = self.clock()
        last = self.total is not None and self.count >= self.total
        if self._last_line is None or last or now - self._last_line >= self.min_interval:
            print(self.line(note), file=self.stream, flush=True)
            self._last_line = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: tp.Iterable, label: str, total: tp.Optional[int] = None,
          note: tp.Callable[[tp.Any], str] = lambda item: "", **kwargs) -> tp.Iterator:
    """Yields ``items`` with a step counted after each one's work (``note(item)`` names it)."""
    if total is None and isinstance(items, tp.Sized):
        total = len(items)
    with Progress(total, label, **kwargs) as progress:
        for item in items:
            yield item
            progress.step(note(item))
