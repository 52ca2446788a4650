"""What one open document keeps from its last lint so that the next one re-parses only the
top-level statements an edit touched.

The names walk and node positions are also kept per top-level statement (analysis/names.py,
engine/positions.py) and shifted to where the statement now is. The rest of the lint runs
whole on the spliced module: values, the project view and every rule see a tree equal to
`libcst.parse_module(text)` (tests/test_lsp_incremental.py
checks that, and the diagnostics, after every edit of random edit sequences). Splicing is
refused, and the text parsed whole, whenever the module-wide layout could differ: an edit
near the first or last statement (the header, footer, default indentation and newline come
from there), or a re-parsed region whose edges do not come out as they were.
"""

from __future__ import annotations

from typing import Dict, List, Optional

# engine.positions (and with it LibCST) is imported where used: starting the server must not
# (tests/test_startup_imports.py)


class Document:
    """Used by one lint at a time (the server runs one lint per document at a time)."""

    def __init__(self):
        self.text: Optional[str] = None
        self.module = None
        self.pieces: Dict[object, object] = {}  # top-level statement -> its laid-out code
        self.where: Dict[object, object] = {}  # node -> the statement of `pieces` holding it
        self._walks = None  # analysis.names.StatementWalks: the names walk, per statement
        self._walks_for = None  # the (module name, package?) the walks were made with
        self.spliced = False  # did the last parse reuse statements (for tests and timing)

    # --- the engine's hooks (engine.lint.lint(..., reuse=document)) ---------------------
    def parse_module(self, text: str):
        import libcst as cst

        module = None
        try:
            module = self._splice(text)
        except Exception:  # anything unexpected: the whole parse decides, and reports
            module = None
        self.spliced = module is not None
        if module is None:
            module = cst.parse_module(text)
        self.text, self.module = text, module
        keep = set(module.body)
        gone = [s for s in self.pieces if s not in keep]
        if len(gone) > len(self.pieces) // 2:  # parsed anew: cheaper to start again
            self.pieces, self.where = {}, {}
        else:
            for stmt in gone:
                for node in self.pieces.pop(stmt).spans:
                    del self.where[node]
        return module

    def walks(self, module, module_name, package: bool):
        """The kept walks for analysis.names.Names (None: walk the module whole)."""
        from ckptlint.analysis.names import StatementWalks

        if module is not self.module:
            return None
        if self._walks is None or self._walks_for != (module_name, package):  # imports resolve against it
            self._walks, self._walks_for = StatementWalks(), (module_name, package)
        return self._walks

    def positions(self, module, lines):
        from ckptlint.engine.positions import PiecewisePositions, Positions

        if module is not self.module or not module.has_trailing_newline:
            return Positions(module)
        starts = self._starts(module)
        if starts[-1] + _footer_length(module) != len(lines.text):
            return Positions(module)  # cannot happen for a module parsed from this text
        return PiecewisePositions(module, lines, self.where, self.pieces, dict(zip(module.body, starts)))

    # --- helpers --------------------------------------------------------------------------
    def _piece(self, stmt):
        from ckptlint.engine.positions import Piece

        piece = self.pieces.get(stmt)
        if piece is None:
            module = self.module
            piece = self.pieces[stmt] = Piece(stmt, module.default_indent, module.default_newline)
            self.where.update(dict.fromkeys(piece.spans, stmt))
        return piece

    def _starts(self, module) -> List[int]:
        """Offset of each top-level statement in the module's text, and the end of the last."""
        from ckptlint.engine.positions import Piece

        at = sum(Piece(h, module.default_indent, module.default_newline).length for h in module.header)
        starts = [at]
        for stmt in module.body:
            at += self._piece(stmt).length
            starts.append(at)
        return starts

    def _splice(self, text: str):
        """The module of `text` from the previous one with the touched statements re-parsed,
        or None when that cannot be shown to equal a whole parse."""
        import libcst as cst

        old, old_text = self.module, self.text
        if old is None or not old.has_trailing_newline:
            return None
        if text == old_text:
            return old
        body = old.body
        starts = self._starts(old)
        head = _common_prefix(old_text, text)
        tail = _common_prefix(old_text[head:][::-1], text[head:][::-1])  # not overlapping head
        old_end, new_end = len(old_text) - tail, len(text) - tail
        # statements touched by [head, old_end), edges included: an edit at a boundary can join
        # two statements; then one more on each side, so the re-parsed text starts and ends
        # with a statement the edit left alone
        first = next((i for i in range(len(body)) if starts[i + 1] >= head), len(body))
        last = max((i for i in range(len(body)) if starts[i] <= old_end), default=-1)
        first, last = first - 1, last + 1
        if first < 1 or last > len(body) - 2 or first > last:
            return None  # the header, first or last statement: parse it all
        # the default indentation is the file's first indented block: it must be before the edit
        if not any(isinstance(getattr(s, "body", None), cst.IndentedBlock) for s in body[:first]):
            return None
        delta = len(text) - len(old_text)
        chunk = text[starts[first]:starts[last + 1] + delta]
        part = cst.parse_module(chunk)
        if (part.footer or len(part.body) < 2
                or part.default_indent != old.default_indent or part.default_newline != old.default_newline):
            return None
        # blank lines and comments opening the text are the part's header, not its first
        # statement's leading lines, as they are in the whole module
        opening = part.body[0].with_changes(leading_lines=(*part.header, *part.body[0].leading_lines))
        if not (opening.deep_equals(body[first]) and part.body[-1].deep_equals(body[last])):
            return None
        new_body = [*body[:first + 1], *part.body[1:-1], *body[last:]]
        return old.with_changes(body=new_body)


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (by halving: slices compare at C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _footer_length(module) -> int:
    from ckptlint.engine.positions import Piece

    return sum(Piece(f, module.default_indent, module.default_newline).length for f in module.footer)
