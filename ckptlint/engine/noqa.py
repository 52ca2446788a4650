"""`# noqa`, `# noqa: CKPT002, CKPT004` and the file-level `# ckptlint: noqa[: codes]`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from ckptlint.engine.source import split_lines

_CODE_LIST = r"(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*)"
LINE_NOQA = re.compile(r"#\s*noqa(?::\s*" + _CODE_LIST + r")?", re.IGNORECASE)
FILE_NOQA = re.compile(r"^\s*#\s*ckptlint\s*:\s*noqa(?:\s*:\s*" + _CODE_LIST + r")?\s*$", re.IGNORECASE | re.MULTILINE)


def _codes(text: Optional[str]) -> Optional[Set[str]]:
    if not text:
        return None  # blanket
    return {c.upper() for c in re.split(r"[\s,]+", text) if c}


@dataclass
class Suppressions:
    file_all: bool = False
    file_codes: Set[str] = field(default_factory=set)
    # row -> None (blanket) or the codes named on that row
    rows: Dict[int, Optional[Set[str]]] = field(default_factory=dict)

    def suppresses(self, code: str, row: Optional[int]) -> bool:
        if code.startswith("E9"):
            return False  # a file that cannot be checked is never hidden
        if self.file_all or code in self.file_codes:
            return True
        if row is None or row not in self.rows:
            return False
        codes = self.rows[row]
        return codes is None or code in codes


def parse(text: str) -> Suppressions:
    s = Suppressions()
    if "noqa" not in text and "NOQA" not in text and "Noqa" not in text:
        return s
    for m in FILE_NOQA.finditer(text):
        codes = _codes(m.group("codes"))
        if codes is None:
            s.file_all = True
        else:
            s.file_codes |= codes
    for row, line in enumerate(split_lines(text), start=1):
        if "#" not in line:
            continue
        m = LINE_NOQA.search(line)
        if m and not FILE_NOQA.match(line):
            s.rows[row] = _codes(m.group("codes"))
    return s


def filter_diagnostics(diagnostics: List, text: str) -> List:
    sup = parse(text)
    return [d for d in diagnostics if not sup.suppresses(d.code, d.noqa_row)]
