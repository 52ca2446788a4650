"""ruff-shaped JSON: one array, stable order (file, row, column, code)."""

from __future__ import annotations

import json


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    return json.dumps([d.to_json() for d in ordered], indent=2, ensure_ascii=False) + "\n"
