"""The progress bar every long job shows: description, bar, n/total, a rate, time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None) -> Progress:
    """A ``rich`` progress display; tasks carry a ``rate`` field (any short text).

    Use as ``with progress_bar(console) as p: t = p.add_task("train", total=n, rate="")``.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
