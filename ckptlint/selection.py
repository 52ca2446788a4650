"""--select / --ignore / --extend-select: codes or prefixes (`CKPT00`), or ALL."""

from __future__ import annotations

from typing import Iterable, List, Optional

from ckptlint.errors import ConfigError, UsageError
from ckptlint.registry import all_rules


def _matches(selector: str, code: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def _enables(selector: str, code: str) -> bool:
    """Opt-in rules need a selector that names their group (`CKPT05`) or themselves;
    `ALL` or `CKPT` alone do not switch them on."""
    if not _matches(selector, code):
        return False
    rule = all_rules()[code]
    return rule.default_enabled or len(selector) >= 6


def check_selectors(selectors: Iterable[str], source=None, key: str = "select") -> List[str]:
    out = []
    codes = list(all_rules())
    for raw in selectors:
        sel = raw.strip().upper()
        if not sel:
            continue
        if not any(_matches(sel, c) for c in codes):
            msg = f"unknown rule selector `{raw}` (see `ckptlint rule --all`)"
            if source is None:
                raise UsageError(msg)
            raise ConfigError(source, msg, key=key)
        out.append(sel)
    return out


def resolve(select: Optional[List[str]], extend_select: List[str], ignore: List[str], source=None) -> List[str]:
    rules = all_rules()
    if select is None:
        chosen = {c for c, r in rules.items() if r.default_enabled}
    else:
        sels = check_selectors(select, source, "select")
        chosen = {c for c in rules if any(_enables(s, c) for s in sels)}
    for s in check_selectors(extend_select, source, "extend-select"):
        chosen |= {c for c in rules if _enables(s, c)}
    for s in check_selectors(ignore, source, "ignore"):
        chosen -= {c for c in rules if _matches(s, c)}
    return sorted(chosen)
