"""Node positions exactly as LibCST's PositionProvider gives them, about 5x cheaper.

PositionProvider re-generates the code and, for every token, splits it on newlines to track
(line, column), and builds two CodePosition objects per node. Here the code generation only
notes token indices per node; a (line, column) is computed for the few nodes a rule reports.
The rules for which span a node gets (syntactic positions, hoisting from child nodes, and
whitespace-inclusive ranges for the rest) are PositionProvider's; tests/test_positions.py
compares the two on every node of a corpus.
"""

from __future__ import annotations

from contextlib import contextmanager
from itertools import accumulate
from typing import Dict, List, Optional, Tuple

from libcst._nodes.internal import CodegenState

from ckptlint.diagnostic import Location
from ckptlint.engine.source import LineIndex


class _IndexState(CodegenState):
    def __init__(self, default_indent: str, default_newline: str):
        super().__init__(default_indent=default_indent, default_newline=default_newline)
        self.stack: List[int] = []
        self.spans: Dict[object, Tuple[int, int]] = {}  # node -> (first token, end token)

    def before_codegen(self, node) -> None:
        self.stack.append(len(self.tokens))

    def after_codegen(self, node) -> None:
        start = self.stack.pop()
        if node not in self.spans:  # a syntactic span recorded below wins
            self.spans[node] = (start, len(self.tokens))

    def pop_trailing_newline(self) -> None:
        # PositionProvider counts the newline before the module drops it; so do we
        pass

    @contextmanager
    def record_syntactic_position(self, node, *, start_node=None, end_node=None):
        start = len(self.tokens)
        try:
            yield
        finally:
            end = len(self.tokens)
            if start_node is not None:
                start = self.spans[start_node][0]
            if end_node is not None:
                end = self.spans[end_node][1]
            self.spans[node] = (start, end)


class Positions:
    """node -> (start Location, end Location), 1-based rows and columns like ckptlint's."""

    def __init__(self, module):
        state = _IndexState(module.default_indent, module.default_newline)
        module._codegen(state)
        self._spans = state.spans
        # character offset where token i starts; one more entry for the end of the code
        self._offsets = [0, *accumulate(len(t) for t in state.tokens)]
        self._lines = LineIndex("".join(state.tokens))

    def span(self, node) -> Optional[Tuple[Location, Location]]:
        found = self._spans.get(node)
        if found is None:
            return None
        start, end = found
        return self._lines.location(self._offsets[start]), self._lines.location(self._offsets[end])


class Piece:
    """One top-level statement's code laid out alone (its code and spans do not depend on
    what surrounds it: a top-level statement starts a line, at no indentation)."""

    def __init__(self, node, default_indent: str, default_newline: str):
        state = _IndexState(default_indent, default_newline)
        node._codegen(state)
        self.spans = state.spans
        self.offsets = [0, *accumulate(len(t) for t in state.tokens)]  # relative to its start

    @property
    def length(self) -> int:
        return self.offsets[-1]


class PiecewisePositions:
    """The same spans as Positions, from the module's statements laid out one by one: an
    editor's re-lint reuses the pieces of the statements an edit left alone. `where` maps
    each node of the statements to its statement, `pieces` and `starts` each statement to its
    Piece and where it begins in the text; nodes outside the statements (the module, its
    header and footer) fall back to Positions."""

    def __init__(self, module, lines: LineIndex, where: Dict[object, object], pieces: Dict[object, Piece],
                 starts: Dict[object, int]):
        self._module = module
        self._lines = lines
        self._where = where
        self._pieces = pieces
        self._starts = starts
        self._whole: Optional[Positions] = None

    def span(self, node) -> Optional[Tuple[Location, Location]]:
        stmt = self._where.get(node)
        if stmt is None or stmt not in self._starts:
            if self._whole is None:
                self._whole = Positions(self._module)
            return self._whole.span(node)
        base, piece = self._starts[stmt], self._pieces[stmt]
        start, end = piece.spans[node]
        return (self._lines.location(base + piece.offsets[start]),
                self._lines.location(base + piece.offsets[end]))
