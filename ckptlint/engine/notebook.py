"""Jupyter notebooks: the code cells linted as one module, findings mapped back to cells.

Cells run top to bottom in one namespace, so names imported in an earlier cell resolve in a
later one: the code cells are concatenated (each after a boundary comment line) and linted
as a single module. IPython syntax (`%magic`, `!shell`, `obj?`) is masked line by line with
plain Python of the same row, so nothing shifts. A cell that does not parse is reported and
left out; the others are still checked. `--fix` rewrites only the cells that changed and
writes the JSON back the way nbformat writes it, so the diff is the fixed lines only."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

from ckptlint.diagnostic import Diagnostic, Edit, Fix, Location
from ckptlint.engine.parse import syntax_error
from ckptlint.engine.passes import check_text
from ckptlint.engine.source import split_lines

BOUNDARY = "# ckptlint: cell boundary"
_MASK = re.compile(r"  # ckptlint-mask-(\d+)$")
_MAGIC = re.compile(r"^(?P<indent>\s*)(?P<assign>[A-Za-z_][\w.,\s]*=\s*)?[%!]")
_HELP = re.compile(r"^(?P<indent>\s*)(\?{1,2}[\w.]+|[\w.]+\?{1,2})\s*$")
# cell magics whose body is still Python; any other %%magic (%%bash, %%html...) is skipped
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "pypy"}


@dataclass
class Cell:
    index: int  # 1-based over all cells, markdown included (like ruff)
    original: str  # the source as one string
    as_list: bool  # source stored as a list of lines (nbformat) or one string
    masked: str = ""  # Python with IPython syntax masked, ending in "\n"
    masks: List[str] = field(default_factory=list)
    start_row: int = 0  # row of the cell's first line in the module
    rows: int = 0
    broken: Optional[Diagnostic] = None  # the cell's own syntax error (rows in the cell)
    skipped: bool = False  # a non-Python cell magic


class NotebookError(ValueError):
    pass


def _source(cell: dict) -> Tuple[str, bool]:
    src = cell.get("source", "")
    if isinstance(src, list) and all(isinstance(s, str) for s in src):
        return "".join(src), True
    if src is None or isinstance(src, str):
        return src or "", False
    raise NotebookError("not a valid notebook (a cell's `source` is not text)")


def _mask(cell: Cell) -> None:
    lines = split_lines(cell.original)
    if lines and lines[0].lstrip().startswith("%%"):
        name = lines[0].lstrip()[2:].split(" ", 1)[0]
        if name not in _PYTHON_CELL_MAGICS:
            cell.skipped = True
            cell.masked = "\n" * len(lines)
            return
    out = []
    for line in lines:
        m = _MAGIC.match(line) or _HELP.match(line)
        if m is None or line.lstrip().startswith("#"):
            out.append(line)
            continue
        cell.masks.append(line)
        assign = m.groupdict().get("assign")
        stub = f"{m.group('indent')}{assign.rstrip()} None" if assign else f"{m.group('indent')}pass"
        out.append(f"{stub}  # ckptlint-mask-{len(cell.masks) - 1}")
    cell.masked = "".join(line + "\n" for line in out)


@dataclass
class Notebook:
    data: dict
    cells: List[Cell]
    style: dict  # json.dumps keyword arguments that reproduce the file
    final_newline: bool

    def dumps(self) -> str:
        text = json.dumps(self.data, **self.style)
        return text + "\n" if self.final_newline else text

    @property
    def code_cells(self) -> List[Cell]:
        return [c for c in self.cells if c is not None]

    def module(self) -> str:
        """The code cells as one module: each after a boundary line; broken or non-Python
        cells are left empty so their neighbours still get checked."""
        parts, row = [], 1
        for cell in self.code_cells:
            parts.append(BOUNDARY + "\n")
            row += 1
            cell.start_row = row
            body = "" if cell.broken or cell.skipped else cell.masked
            cell.rows = body.count("\n")
            parts.append(body)
            row += cell.rows
        return "".join(parts)


def _style(text: str, data) -> dict:
    """nbformat writes indent=1, sorted keys, ensure_ascii=False; keep another layout when
    the file uses one we can reproduce exactly."""
    body = text[:-1] if text.endswith("\n") else text
    for indent in (1, 2, 4, None):
        for sort_keys in (True, False):
            for ensure_ascii in (False, True):
                kw = {"indent": indent, "sort_keys": sort_keys, "ensure_ascii": ensure_ascii}
                if indent is not None:
                    kw["separators"] = (",", ": ")
                if json.dumps(data, **kw) == body:
                    return kw
    return {"indent": 1, "sort_keys": True, "ensure_ascii": False, "separators": (",", ": ")}


def parse(text: str, path: str = "notebook.ipynb") -> Notebook:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"not a valid notebook (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("not a valid notebook (no `cells` list)")
    cells: List[Optional[Cell]] = []
    for i, raw in enumerate(data["cells"], start=1):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            cells.append(None)
            continue
        source, as_list = _source(raw)
        cell = Cell(i, source, as_list)
        _mask(cell)
        if not cell.skipped:
            cell.broken = syntax_error(path, cell.masked)
        cells.append(cell)
    return Notebook(data, cells, _style(text, data), text.endswith("\n"))


# --- positions ----------------------------------------------------------------------------------
def _locate(nb: Notebook, row: int) -> Optional[Cell]:
    cells = [c for c in nb.code_cells if c.rows]
    starts = [c.start_row for c in cells]
    i = bisect_right(starts, row) - 1
    if i < 0:
        return None
    cell = cells[i]
    return cell if row < cell.start_row + cell.rows else None


def _shift(loc: Optional[Location], cell: Cell) -> Optional[Location]:
    return None if loc is None else Location(loc.row - cell.start_row + 1, loc.column)


def to_cells(nb: Notebook, diagnostics: List[Diagnostic], path: str) -> List[Diagnostic]:
    """Module rows -> (cell, row in cell); plus one E999 per broken cell."""
    out = []
    for d in diagnostics:
        cell = _locate(nb, d.location.row) if d.location else None
        if cell is None:
            if d.location is not None and d.code.startswith("E9"):
                d = replace(d, location=Location(1, 1), end_location=Location(1, 1), noqa_row=1)
            out.append(d)
            continue
        fix = d.fix
        if fix is not None:
            fix = Fix(fix.applicability, fix.message,
                      tuple(Edit(_shift(e.start, cell), _shift(e.end, cell), e.content) for e in fix.edits))
        out.append(replace(
            d, cell=cell.index, location=_shift(d.location, cell), end_location=_shift(d.end_location, cell),
            noqa_row=None if d.noqa_row is None else d.noqa_row - cell.start_row + 1, fix=fix,
        ))
    for cell in nb.code_cells:
        if cell.broken:
            out.append(replace(cell.broken, cell=cell.index))
    return out


# --- writing back -------------------------------------------------------------------------------
def _unmask(text: str, cell: Cell) -> str:
    lines = []
    for line in split_lines(text, keepends=True):
        body = line.rstrip("\r\n")
        m = _MASK.search(body)
        if m and int(m.group(1)) < len(cell.masks):
            line = cell.masks[int(m.group(1))] + line[len(body):]
        lines.append(line)
    return "".join(lines)


def rewrite(nb: Notebook, fixed_module: str) -> Optional[str]:
    """The notebook JSON with the fixed cells' sources, or None when no cell changed."""
    chunks = fixed_module.split(BOUNDARY + "\n")[1:]
    code = nb.code_cells
    if len(chunks) != len(code):
        raise NotebookError("fixes moved a cell boundary; not writing the notebook")
    changed = False
    for cell, chunk in zip(code, chunks):
        if cell.broken or cell.skipped or chunk == cell.masked:
            continue
        new = _unmask(chunk, cell)
        if not cell.original.endswith("\n") and new.endswith("\n"):
            new = new[:-1]
        if new == cell.original:
            continue
        changed = True
        raw = nb.data["cells"][cell.index - 1]
        raw["source"] = new.splitlines(keepends=True) if cell.as_list else new
    return nb.dumps() if changed else None


def check_notebook(path: str, text: str, settings, rules, fix: bool = False, unsafe_fixes: bool = False,
                   ignore_noqa: bool = False, project=None, consulted=None):
    """Like passes.check_text for a notebook's JSON text: (new JSON text, diagnostics, applied)."""
    nb = parse(text, path)
    module = nb.module()
    fixed, diags, applied = check_text(path, module, settings, rules, fix, unsafe_fixes, None, ignore_noqa,
                                       project, consulted)
    applied = to_cells(nb, applied, path)
    if fixed != module:
        rewritten = rewrite(nb, fixed)
        if rewritten is not None:
            # what remains, in the rewritten notebook's own cell rows
            _, remaining, _ = check_notebook(path, rewritten, settings, rules, ignore_noqa=ignore_noqa,
                                                  project=project, consulted=consulted)
            return rewritten, remaining, applied
    return text, to_cells(nb, diags, path), applied


def add_noqa_notebook(text: str, diagnostics) -> Tuple[str, int, List[Tuple[int, int]]]:
    """`--add-noqa` in a notebook: each cell's own lines get the comments.
    Returns (new JSON text, directives added, skipped (cell, row) pairs)."""
    from ckptlint.engine.noqa_edit import add_noqa

    nb = parse(text)
    total, skipped = 0, []
    for cell in nb.code_cells:
        mine = [d for d in diagnostics if d.cell == cell.index]
        if not mine or cell.broken or cell.skipped:
            continue
        new, count, rows = add_noqa(cell.original, mine)
        skipped.extend((cell.index, r) for r in rows)
        if count:
            total += count
            raw = nb.data["cells"][cell.index - 1]
            raw["source"] = new.splitlines(keepends=True) if cell.as_list else new
    return (nb.dumps() if total else text), total, skipped
