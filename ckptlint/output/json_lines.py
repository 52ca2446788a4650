"""One JSON object per line (same objects as `--output-format json`), for streaming readers."""

from __future__ import annotations

import json


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    return "".join(json.dumps(d.to_json(), ensure_ascii=False) + "\n" for d in ordered)
