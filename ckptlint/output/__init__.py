"""Output formats: each a thin view of a list of Diagnostic (see shared OUTPUT.md).

A format module defines `render(diagnostics, report) -> str`; `report` carries what a run
knows beyond the diagnostics (cwd, fix flags, counts). Adding a format = one module + one
entry here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

FORMATS: Dict[str, str] = {
    "text": "ckptlint.output.text",  # one line per finding: ruff's `concise` form
    "full": "ckptlint.output.full",  # and the source line and the help below it: ruff's `full`
    "json": "ckptlint.output.json_",
    "json-lines": "ckptlint.output.json_lines",
    "sarif": "ckptlint.output.sarif",
    "github": "ckptlint.output.github",
    "gitlab": "ckptlint.output.gitlab",
}

# the formats a person reads: notes go to stderr beside them, a progress bar may show
HUMAN = ("text", "full")


@dataclass
class Report:
    """What a run knows beyond its diagnostics, for the formats that show it."""

    cwd: Path
    fix: bool = False
    unsafe_fixes: bool = False
    fixed_count: int = 0
    show_fixes: bool = False
    statistics: bool = False
    quiet: bool = False
    applied: List = field(default_factory=list)  # diagnostics whose fixes were applied
    files_checked: int = 0
    codes: List[str] = field(default_factory=list)  # every rule selected for some file (SARIF lists them)


def renderer(name: str) -> Callable:
    return importlib.import_module(FORMATS[name]).render
