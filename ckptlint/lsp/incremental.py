"""What one open document keeps from its last lint so that the next one re-parses only the
smallest statement an edit touched: a method inside a class, a block inside a function, or a
top-level statement.

After an edit, the statements the edit touched in the innermost block holding it, plus one
untouched statement on each side, are parsed again (inside `if 1:` lines that give them the
indentation they have) and spliced into the kept tree; the statements and blocks around are
rebuilt with `with_changes`, everything else is the same objects as before. The splice is
accepted only when the statements on both edges come out equal to the kept ones (the text
before and after them is unchanged, so the parser reads the rest as before) and the
module-wide layout (default indentation and newline) cannot have changed; else the next
block out is tried, and in the end the text is parsed whole: an edit touching the first or
last statement of the file, or of every block around it.

Node positions (engine/positions.py, Piece) are kept per statement: each top-level statement,
and each compound statement of a class body, is laid out on its own, so an edit in one method
lays out that method and its class's short outline again, not the class. The names walk is
kept per top-level statement (analysis/names.py, StatementWalks). The rest of the lint runs
whole on the spliced module: values, the project view and every rule see a tree equal to
`libcst.parse_module(text)` (tests/test_lsp_incremental.py checks that, the positions, the
names and the diagnostics after every edit of random edit sequences).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

# engine.positions (and with it LibCST) is imported where used: starting the server must not
# (tests/test_startup_imports.py)

_PARTS = ("If", "Else", "Try", "TryStar", "ExceptHandler", "ExceptStarHandler", "Finally", "For", "While",
          "With", "FunctionDef", "ClassDef", "Match", "MatchCase")  # what lies between a statement and its blocks


class Document:
    """Used by one lint at a time (the server runs one lint per document at a time)."""

    def __init__(self):
        self.text: Optional[str] = None
        self.module = None
        self.pieces: Dict[object, object] = {}  # statement laid out on its own -> its Piece
        self.where: Dict[object, object] = {}  # node -> the statement of `pieces` laying it out
        self.parent: Dict[object, object] = {}  # statement of `pieces` -> the one holding its placeholder
        self._laid = None  # (module, {top-level statement: start}, {nested statement: start}, end)
        self._walks = None  # analysis.names.StatementWalks: the names walk, per statement
        self._walks_for = None  # the (module name, package?) the walks were made with
        self.spliced = False  # did the last parse reuse statements (for tests and timing)
        self.depth = 0  # blocks between the module and the statements the last splice parsed

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
            self.pieces, self.where, self.parent = {}, {}, {}  # nothing of the old tree is left
        self.text, self.module = text, module
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
        if self._layout(module)[3] != len(lines.text):
            return Positions(module)  # cannot happen for a module parsed from this text
        return PiecewisePositions(module, lines, self.where, self.pieces, self._start_of)

    # --- layout ---------------------------------------------------------------------------
    def _layout(self, module):
        """Pieces for every statement of `module` that has its own (made where missing, dropped
        where gone); returns (module, top-level starts, nested starts memo, end of the code)."""
        from ckptlint.engine.positions import Piece

        if self._laid is not None and self._laid[0] is module:
            return self._laid
        import libcst as cst

        indent, newline = module.default_indent, module.default_newline
        live = set()
        pieces, where, parent = self.pieces, self.where, self.parent

        def ensure(stmt, indents: Tuple[str, ...], holder):
            live.add(stmt)
            parent[stmt] = holder
            piece = pieces.get(stmt)
            kids: Optional[dict] = None
            if _has_units(stmt, cst):
                block = stmt.body
                inner = (*indents, block.indent if block.indent is not None else indent)
                if piece is not None:
                    for kid in piece.children:
                        ensure(kid, inner, stmt)
                    return piece
                kids = {s: ensure(s, inner, stmt) for s in block.body if isinstance(s, cst.BaseCompoundStatement)}
            if piece is None:
                piece = pieces[stmt] = Piece(stmt, indent, newline, indents, kids)
                where.update(dict.fromkeys(piece.spans, stmt))
            return piece

        at = sum(Piece(h, indent, newline).length for h in module.header)
        starts = {}
        for stmt in module.body:
            starts[stmt] = at
            at += ensure(stmt, (), None).length
        end = at + sum(Piece(f, indent, newline).length for f in module.footer)
        for stmt in [s for s in pieces if s not in live]:
            piece = pieces.pop(stmt)
            parent.pop(stmt, None)
            for node in piece.spans:
                if where.get(node) is stmt:  # a node its new version shares stays with that
                    del where[node]
        self._laid = (module, starts, {}, end)
        return self._laid

    def _start_of(self, stmt) -> Optional[int]:
        """Where a statement of `pieces` begins in the text of the last laid-out module."""
        _, starts, memo, _ = self._laid
        at = starts.get(stmt)
        if at is None:
            at = memo.get(stmt)
        if at is None:
            holder = self.parent.get(stmt)
            base = self._start_of(holder) if holder is not None else None
            if base is None:
                return None
            at = memo[stmt] = base + self.pieces[holder].children[stmt][0]
        return at

    def _range(self, stmt) -> Tuple[int, int]:
        """Where a statement of the laid-out module is in its text, leading lines included."""
        piece = self.pieces.get(stmt)
        if piece is not None:
            at = self._start_of(stmt)
            return at, at + piece.length
        holder = self.where[stmt]
        base = self._start_of(holder)
        start, end = self.pieces[holder].full[stmt]
        return base + start, base + end

    # --- splicing -------------------------------------------------------------------------
    def _splice(self, text: str):
        """The module of `text` from the previous one with the touched statements re-parsed,
        or None when that cannot be shown to equal a whole parse."""
        old, old_text = self.module, self.text
        if old is None or not old.has_trailing_newline:
            return None
        if text == old_text:
            return old
        self._layout(old)
        head = _common_prefix(old_text, text)
        tail = _common_prefix(old_text[head:][::-1], text[head:][::-1])  # not overlapping head
        old_end = len(old_text) - tail
        delta = len(text) - len(old_text)
        for path, stmts, ranges, first, last in reversed(self._levels(old, head, old_end)):
            # statements touched by [head, old_end) (see _levels); then one more on each
            # side, so the re-parsed text starts and ends with a statement the edit left alone
            first, last = first - 1, last + 1
            if path:
                if first < 0 or last > len(stmts) - 1 or first > last:
                    continue
                module = self._splice_block(old, text, delta, path, stmts, ranges, first, last)
            else:
                if first < 0 or last > len(stmts) - 1 or first > last:
                    continue
                module = self._splice_top(old, text, delta, stmts, ranges, first, last)
            if module is not None:
                self.depth = sum(1 for n in path if type(n).__name__ == "IndentedBlock")
                return module
        return None

    def _levels(self, old, head: int, old_end: int) -> list:
        """From the module's statements down to the innermost block holding [head, old_end):
        (path from a top-level statement to the block, the block's statements, their ranges,
        first and last statement the edit touches) per level."""
        import libcst as cst

        levels = []
        path: list = []
        stmts = list(old.body)
        ranges = [self._range(s) for s in stmts]
        while True:
            # a statement ending where the edit starts is touched when it is compound: lines
            # added after it may be its block's trailing comments (a simple one ends a line)
            first = next((i for i, r in enumerate(ranges)
                          if r[1] > head or (r[1] == head and isinstance(stmts[i], cst.BaseCompoundStatement))),
                         len(stmts))
            last = max((i for i, r in enumerate(ranges) if r[0] <= old_end), default=-1)
            levels.append((path, stmts, ranges, first, last))
            if first != last or not isinstance(stmts[first], cst.BaseCompoundStatement):
                return levels
            for inner in _blocks(stmts[first], cst):
                body = inner[-1].body
                if not body:
                    continue
                inner_ranges = [self._range(s) for s in body]
                if inner_ranges[0][0] <= head and old_end <= inner_ranges[-1][1]:
                    path, stmts, ranges = path + inner, list(body), inner_ranges
                    break
            else:
                return levels

    def _splice_top(self, old, text: str, delta: int, body, ranges, first: int, last: int):
        import libcst as cst

        # The default indentation is that of the file's first indented block: before the part
        # (unchanged), else the part's first one if it has one (it is then the file's first:
        # the part's default is the whole text's), else after the part (unchanged; the part's
        # is LibCST's own default then, which must be the file's for the check below to pass).
        # The default newline is the first line's, in the header or an edge statement.
        part = cst.parse_module(text[ranges[first][0]:ranges[last][1] + delta])
        if (part.footer or len(part.body) < 2
                or part.default_indent != old.default_indent or part.default_newline != old.default_newline):
            return None
        # blank lines and comments opening the text are the part's header, not its first
        # statement's leading lines, as they are in the whole module
        opening = part.body[0].with_changes(leading_lines=(*part.header, *part.body[0].leading_lines))
        if not (opening.deep_equals(body[first]) and part.body[-1].deep_equals(body[last])):
            return None
        return old.with_changes(body=[*body[:first + 1], *part.body[1:-1], *body[last:]])

    def _splice_block(self, old, text: str, delta: int, path: list, body, ranges, first: int, last: int):
        """Re-parse statements first..last of the block at the end of `path`, inside `if 1:`
        lines that indent them as they are, and rebuild the statements around."""
        import libcst as cst

        blocks = [n for n in path if isinstance(n, cst.IndentedBlock)]
        indents = [b.indent if b.indent is not None else old.default_indent for b in blocks]
        newline = old.default_newline
        wrapper = "".join("".join(indents[:k]) + "if 1:" + newline for k in range(len(indents)))
        part = cst.parse_module(wrapper + text[ranges[first][0]:ranges[last][1] + delta])
        if (part.header or part.footer
                or part.default_indent != old.default_indent or part.default_newline != old.default_newline):
            return None
        stmts = part.body
        block = None
        for _ in indents:
            if len(stmts) != 1 or not isinstance(stmts[0], cst.If) or stmts[0].orelse is not None:
                return None
            block = stmts[0].body
            if not isinstance(block, cst.IndentedBlock) or block.footer:
                return None
            stmts = block.body
        if block is None or block.indent != blocks[-1].indent or len(stmts) < 2:
            return None
        if not (stmts[0].deep_equals(body[first]) and stmts[-1].deep_equals(body[last])):
            return None
        new = path[-1].with_changes(body=[*body[:first + 1], *stmts[1:-1], *body[last:]])
        for node, child in zip(reversed(path[:-1]), reversed(path[1:])):
            new = _replace_child(node, child, new)
        top = path[0]
        return old.with_changes(body=[new if s is top else s for s in old.body])


def _has_units(stmt, cst) -> bool:
    """Are the compound statements of this statement's body laid out on their own? Those of a
    class body: methods are what a long class is made of."""
    return isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock)


def _blocks(stmt, cst) -> List[list]:
    """The indented blocks of a compound statement (its body, else, except, finally, elif,
    case blocks), each as the path of nodes from the statement to the block."""
    out = []
    stack = [[stmt]]
    while stack:
        path = stack.pop()
        for child in path[-1].children:
            if isinstance(child, cst.IndentedBlock):
                out.append(path + [child])
            elif type(child).__name__ in _PARTS:
                stack.append(path + [child])
    return out


def _replace_child(parent, old, new):
    """`parent` with its child `old` (a field, or an item of a sequence field) replaced."""
    import dataclasses

    for f in dataclasses.fields(parent):
        value = getattr(parent, f.name)
        if value is old:
            return parent.with_changes(**{f.name: new})
        if isinstance(value, (tuple, list)) and any(v is old for v in value):
            return parent.with_changes(**{f.name: type(value)(new if v is old else v for v in value)})
    raise ValueError("not a child")  # the splice is then refused (parse_module catches it)


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
