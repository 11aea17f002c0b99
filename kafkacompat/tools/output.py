"""Human output through rich (tables, progress), machine output as plain JSON.

Tables go to stdout at their natural width even when stdout is a pipe, so a
script or a test reads whole rows; colours only on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> "Console":
    """rich is imported on first output, so ``kafkacompat serve`` never pays for it."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 100_000, highlight=False, soft_wrap=not tty)


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    """One table: a header line, then a row per item; ``-`` stands for an empty cell."""
    from rich import box
    from rich.table import Table

    shown = Table(*columns, title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  header_style="bold")
    for row in rows:
        shown.add_row(*("-" if cell is None or cell == "" else str(cell) for cell in row))
    console().print(shown)


def line(text: str) -> None:
    console().print(text, markup=False)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def report(as_json: bool, machine: Any, human: str) -> None:
    """``machine`` as JSON with ``--json``, else the ``human`` text (nothing if empty)."""
    if as_json:
        emit_json(machine)
    elif human:
        line(human)


@contextlib.contextmanager
def counter(label: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A live "N records" spinner on stderr while a command works; only on a terminal, else a no-op."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda count: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn(label), TextColumn("{task.completed:,} records"),
                  TimeElapsedColumn(), console=console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda count: progress.update(task, completed=count)
