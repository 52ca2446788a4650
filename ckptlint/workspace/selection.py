"""--select / --ignore / --extend-select: codes or prefixes (`CKPT00`), or ALL."""

from __future__ import annotations

from typing import Iterable, List, Optional

from ckptlint.errors import ConfigError, UsageError
from ckptlint.rules import rule_index


def _matches(selector: str, code: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


# An opt-in rule (`default_enabled = False`) is switched on only by a selector at least this
# long that matches it: its code or its group (`CKPT05`), or by `ALL`. A broad prefix (`CKPT`,
# `CKPT0`) selects the default rules only, so that it does not turn on noisier checks.
OPT_IN_PREFIX = len("CKPT05")


def _enables(selector: str, code: str) -> bool:
    if not _matches(selector, code):
        return False
    return rule_index()[code] or selector == "ALL" or len(selector) >= OPT_IN_PREFIX


def opt_in_note(selectors: Iterable[str], ignore: Iterable[str] = ()) -> Optional[str]:
    """What to tell a user whose selectors match opt-in rules without switching them on
    (`--select CKPT`), or None."""
    sels = [s.strip().upper() for s in selectors if s.strip()]
    ignored = [s.strip().upper() for s in ignore if s.strip()]
    left = [c for c, default in rule_index().items()
            if not default and any(_matches(s, c) for s in sels)
            and not any(_enables(s, c) for s in sels) and not any(_matches(s, c) for s in ignored)]
    if not left:
        return None
    groups = sorted({c[:OPT_IN_PREFIX] for c in left})
    return (f"note: {', '.join(sels)} leaves out the opt-in rules {', '.join(left)}; select them "
            f"by code, by group ({', '.join(f'`{g}`' for g in groups)}), or with `ALL`")


def check_selectors(selectors: Iterable[str], source=None, key: str = "select") -> List[str]:
    out = []
    codes = list(rule_index())
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
    rules = rule_index()
    if select is None:
        chosen = {c for c, default in rules.items() if default}
    else:
        sels = check_selectors(select, source, "select")
        chosen = {c for c in rules if any(_enables(s, c) for s in sels)}
    for s in check_selectors(extend_select, source, "extend-select"):
        chosen |= {c for c in rules if _enables(s, c)}
    for s in check_selectors(ignore, source, "ignore"):
        chosen -= {c for c in rules if _matches(s, c)}
    return sorted(chosen)
