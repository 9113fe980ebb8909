"""Progress on long steps (a national import reads 750,000 rows for a minute): rich bars on
stderr, on a terminal only. In a pipe, a test, CI or with ``--json`` nothing is drawn and
rich is not even imported, so scripts read exactly what they read before."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import IO, Any


def wanted(stream: IO[str] | None = None, *, quiet: bool = False) -> bool:
    """Whether to draw: a terminal that is not dumb, outside CI, unless ``quiet``."""
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if quiet or isatty is None or not isatty():
        return False
    return os.environ.get("TERM") != "dumb" and not os.environ.get("CI")


class Progress:
    """What a command reports: ``step`` for a phase that cannot be counted (a spinner and the
    time so far), ``rows`` for rows read from a file, ``counter`` for the items a core function
    goes through (count, rate and time left)."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.tasks: dict[str, Any] = {}

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        if self.bar is None:
            yield
            return
        task = self.bar.add_task(label, total=None)
        try:
            yield
        finally:
            self.bar.update(task, total=1, completed=1)

    def rows(self, name: str, done: int, total: int | None) -> None:
        if self.bar is None:
            return
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = self.bar.add_task(f"读取 {name}", total=total)
        self.bar.update(task, completed=done)

    def counter(self, label: str, unit: str) -> Callable[[int, int], None] | None:
        """The ``on_step`` hook for a core function: a bar ``label`` counting ``unit``s (e.g.
        个群, 步), or ``None`` when nothing is drawn (the core function then skips its calls)."""
        bar = self.bar
        if bar is None:
            return None
        task: Any = None

        def on_step(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task(label, total=total, unit=unit)
            bar.update(task, completed=done, total=total)

        return on_step


@contextmanager
def progress(*, quiet: bool = False, stream: IO[str] | None = None) -> Iterator[Progress]:
    """A ``Progress`` that draws on ``stream`` (stderr) when ``wanted``, else does nothing."""
    if not wanted(stream, quiet=quiet):
        yield Progress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bars

    console = Console(file=stream if stream is not None else sys.stderr)
    bars = Bars(
        SpinnerColumn(finished_text="✔"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _rate_column(),
        TimeElapsedColumn(),
        TextColumn("剩余"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with bars:
        yield Progress(bars)


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):  # rows a second, once there are some to measure
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            unit = task.fields.get("unit", "行")
            return Text(f"{speed:,.0f} {unit}/秒" if speed and task.total else "")

    return Rate()


def rows_watched(p: Progress) -> Any:
    """``matrix.sheets.watching`` for ``p``, or nothing to watch when it does not draw."""
    if p.bar is None:
        return nullcontext()
    from matrix.sheets import watching

    return watching(p.rows)
