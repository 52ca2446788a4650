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
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Callable, Dict, List, Optional, Tuple

import libcst as cst
from libcst._nodes.internal import CodegenState

from ckptlint.diagnostic import Location
from ckptlint.engine.source import LineIndex


class _IndexState(CodegenState):
    def __init__(self, default_indent: str, default_newline: str, full: Optional[dict] = None):
        super().__init__(default_indent=default_indent, default_newline=default_newline)
        self.stack: List[int] = []
        self.spans: Dict[object, Tuple[int, int]] = {}  # node -> (first token, end token)
        self.full = full  # statement -> its tokens with its leading lines, when asked for

    def before_codegen(self, node) -> None:
        self.stack.append(len(self.tokens))

    def after_codegen(self, node) -> None:
        start = self.stack.pop()
        if node not in self.spans:  # a syntactic span recorded below wins
            self.spans[node] = (start, len(self.tokens))
        if self.full is not None and _is_statement(type(node)):
            self.full[node] = (start, len(self.tokens))

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


_STATEMENT: Dict[type, bool] = {}


def _is_statement(kind: type) -> bool:
    found = _STATEMENT.get(kind)
    if found is None:
        found = _STATEMENT[kind] = issubclass(kind, cst.BaseStatement)
    return found


@dataclass(frozen=True)
class _Stub(cst.BaseStatement):
    """Stands in for a statement laid out in a Piece of its own: as many characters as its
    code, with its syntactic span where the statement has it (what its block's span uses)."""

    unit: Any = None
    parts: Tuple[int, int, int] = (0, 0, 0)  # leading lines and indentation, syntactic span, rest

    def _visit_and_replace_children(self, visitor):
        return self

    def _codegen_impl(self, state) -> None:
        lead, syntactic, rest = self.parts
        state.add_token(" " * lead)
        start = len(state.tokens)
        state.add_token(" " * syntactic)
        state.spans[self] = (start, len(state.tokens))
        state.add_token(" " * rest)


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
    """One statement's code laid out alone: its code and spans do not depend on what surrounds
    it, given the indentation it starts at (`indents`, the blocks around it). `children`: the
    statements of its class body that have a Piece of their own ({statement: Piece}); each is
    laid out here as a placeholder of its length, so that an edit inside one method lays out
    that method again, not its class."""

    def __init__(self, node, default_indent: str, default_newline: str, indents: Tuple[str, ...] = (),
                 children: Optional[Dict[object, "Piece"]] = None):
        self.node = node
        shell, copies = node, {}
        stubs: List[_Stub] = []
        if children:
            block = node.body
            body = []
            for stmt in block.body:
                piece = children.get(stmt)
                body.append(stmt if piece is None else _Stub(stmt, piece.parts))
            stubs = [b for b in body if isinstance(b, _Stub)]
            inner = block.with_changes(body=body)
            shell = node.with_changes(body=inner)
            copies = {shell: node, inner: block}
        state = _IndexState(default_indent, default_newline, full={})
        state.indent_tokens = list(indents)
        shell._codegen(state)
        spans, full = state.spans, state.full
        for copy, real in copies.items():
            spans[real] = spans.pop(copy)
            if copy in full:
                full[real] = full.pop(copy)
        self.offsets = offsets = [0, *accumulate(len(t) for t in state.tokens)]  # relative to its start
        self.children: Dict[object, Tuple[int, int]] = {}  # statement with its own Piece -> where it is here
        for stub in stubs:
            del spans[stub]
            s, e = full.pop(stub)
            self.children[stub.unit] = (offsets[s], offsets[e])
        self.spans = spans  # node -> (first token, end token), for every node laid out here
        self.full = {n: (offsets[s], offsets[e]) for n, (s, e) in full.items()}  # statement -> its text, leading lines included

    @property
    def length(self) -> int:
        return self.offsets[-1]

    @property
    def parts(self) -> Tuple[int, int, int]:
        """(leading lines and indentation, syntactic span, rest) of the statement, in characters."""
        s, e = self.spans[self.node]
        return self.offsets[s], self.offsets[e] - self.offsets[s], self.length - self.offsets[e]


class PiecewisePositions:
    """The same spans as Positions, from the module's statements laid out piece by piece: an
    editor's re-lint reuses the pieces of the statements an edit left alone. `where` maps each
    node to the statement whose Piece lays it out, `pieces` each such statement to its Piece,
    and `start_of(statement)` gives where it begins in the text (None: not in this module);
    nodes outside the statements (the module, its header and footer) fall back to Positions."""

    def __init__(self, module, lines: LineIndex, where: Dict[object, object], pieces: Dict[object, Piece],
                 start_of: Callable[[object], Optional[int]]):
        self._module = module
        self._lines = lines
        self._where = where
        self._pieces = pieces
        self._start_of = start_of
        self._whole: Optional[Positions] = None

    def span(self, node) -> Optional[Tuple[Location, Location]]:
        stmt = self._where.get(node)
        base = self._start_of(stmt) if stmt is not None else None
        if base is None:
            if self._whole is None:
                self._whole = Positions(self._module)
            return self._whole.span(node)
        piece = self._pieces[stmt]
        start, end = piece.spans[node]
        return (self._lines.location(base + piece.offsets[start]),
                self._lines.location(base + piece.offsets[end]))
