"""Tables for people, JSON for scripts: the one place CLI output is rendered."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_json", "print_table"]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(*columns, box=None, pad_edge=False, show_edge=False, header_style="bold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    tty = sys.stdout.isatty()
    # A pipe gets a wide fixed width so scripts see one row per line.
    Console(no_color=not tty, width=None if tty else 200).print(table)
