"""What a rule sees of one file: the tree, names, scopes, positions, and helpers to report and
fix. FileContext is the API rules use (docs/architecture.md lists it); tests/test_architecture.py
checks that rules keep to it."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import libcst as cst

from ckptlint.analysis.names import Binding, Names, Scope
from ckptlint.diagnostic import SAFE, Diagnostic, Edit, Fix, Location, fit_headline
from ckptlint.engine.source import LineIndex


class FileContext:
    """One file as a rule sees it. The public API, all a rule needs:

    The file      path, text, settings, options (the rule's), module (LibCST), tree (stdlib ast,
                  or None), lines
    Finding code  calls, calls_to(*qualified names), call_qname(call), qualified_name(expr),
                  nodes(*types), names_spelled(value), parent(node), code(node)
    Scopes        scope_of(node) -> Scope (kind, parent, node, bindings, encloses(other)),
                  binding_of(name) -> Binding (name, kind, node, qname, value), order(node)
    Meaning       values.of(expr) (what an expression holds: analysis/values.py),
                  project (the project index seen from this file: analysis/project.py)
    Positions     start(node), end(node), offset(location), value_end(expr)
    Fixes         insert_at, replace, delete_span, add_keyword, remove_arg, quoted
    Reporting     report(node, message, edits=(), applicability=SAFE, ..., help=None)
    Set by the engine: rule (the rule being run), diagnostics (its findings so far here).

    `names` is the analysis's own (analysis/ reads it); rules ask the methods above."""

    def __init__(self, path: str, text: str, module: cst.Module, settings, module_name: Optional[str] = None,
                 tree=None, project=None, consulted: Optional[set] = None, reuse=None):
        self.path = path
        self.tree = tree  # the stdlib AST of the same text, when the linter has it
        self.text = text
        self.module = module
        self.settings = settings
        package = os.path.basename(path) == "__init__.py"
        walks = reuse.walks(module, module_name, package) if reuse is not None else None
        self.names = Names(module, module_name, package, walks=walks)
        if self.names.module_scope.star_imports:  # `from .basics import *`: the project says what it binds
            self.names.star_lookup = lambda name: self.project.star_export(name)
        self.lines = LineIndex(text)
        self._positions = None
        self._calls: Optional[List[cst.Call]] = None
        self._call_qnames: Optional[list] = None  # (call, call_qname(call)) in source order
        self._qnames: Dict[cst.Call, Optional[str]] = {}
        self._nodes: Dict[tuple, list] = {}
        self._by_spelling: Optional[Dict[str, List[cst.Name]]] = None
        self.diagnostics: List[Diagnostic] = []
        self.rule = None  # the rule being run, set by the linter
        self._index = project  # the ProjectIndex the engine was handed
        self._consulted = consulted
        self._project = None
        self._values = None
        self._reuse = reuse  # places nodes from a previous lint's pieces (engine.lint.lint)

    @property
    def options(self) -> Mapping[str, Any]:
        """The running rule's options: `[tool.ckptlint.rule-options.CODE]` over its defaults
        (none outside a rule's check)."""
        return {} if self.rule is None else self.rule.options_in(self.settings)

    # --- shared analysis (computed when a rule first asks) -------------------------------------
    @property
    def project(self):
        """The project-wide index (classes, constants, save/load sites) seen from this file."""
        if self._project is None:
            if self._index is None:
                from ckptlint.analysis.project import ProjectIndex

                self._index = ProjectIndex()
            self._project = self._index.view(self.path, self.text, self.names.module_name, self.tree,
                                             self._consulted)
        return self._project

    @property
    def values(self):
        """`ctx.values.of(expr)`: what an expression holds (ckptlint.analysis.values)."""
        if self._values is None:
            from ckptlint.analysis.values import Values

            self._values = Values(self)
        return self._values

    def close(self) -> None:
        """Drop the shared analysis once the rules have run: it refers back to this context,
        and the cycle would leave the file's trees for the cyclic garbage collector to find
        (a fifth of an editor's re-lint) instead of freeing them now."""
        self._values = self._project = None

    # --- tree queries --------------------------------------------------------------------
    @property
    def calls(self) -> List[cst.Call]:
        if self._calls is None:
            self._calls = list(self.nodes(cst.Call))
        return self._calls

    def nodes(self, *types) -> Iterable[cst.CSTNode]:
        """Every node of the given types, in source order (one scan of the file per types,
        however many rules and findings ask)."""
        if types not in self._nodes:
            # isinstance on LibCST's classes goes through ABCMeta for every node: ask once per class
            wanted: Dict[type, bool] = {}

            def of_types(nodes) -> list:
                out = []
                for n in nodes:
                    kind = type(n)
                    hit = wanted.get(kind)
                    if hit is None:
                        hit = wanted[kind] = issubclass(kind, types)
                    if hit:
                        out.append(n)
                return out

            by_part = getattr(self.names.seq, "of_types", None)  # the language server's kept walks
            self._nodes[types] = by_part(types, of_types) if by_part is not None else of_types(self.names.seq)
        return self._nodes[types]

    def names_spelled(self, value: str) -> List[cst.Name]:
        """Every `Name` node spelling `value`, in source order."""
        if self._by_spelling is None:
            self._by_spelling = {}
            for n in self.nodes(cst.Name):
                self._by_spelling.setdefault(n.value, []).append(n)
        return self._by_spelling.get(value, [])

    # --- scopes and order -------------------------------------------------------------------
    def scope_of(self, node: cst.CSTNode) -> Scope:
        """The scope (module, class, function, lambda, comprehension) a node is in."""
        return self.names.scope(node)

    def binding_of(self, name: cst.Name) -> Optional[Binding]:
        """The binding a use of a name most likely refers to (None when unknown)."""
        return self.names.binding(name)

    def order(self, node: cst.CSTNode) -> int:
        """Where a node comes in the file, in the order a walk of the tree meets nodes (a
        parent before its children, siblings in source order): `ctx.order(a) < ctx.order(b)`
        when `a` comes first. 0 for a node that is not in this file's tree."""
        return self.names.seq.get(node, 0)

    def call_qname(self, call: cst.Call) -> Optional[str]:
        if call not in self._qnames:
            self._qnames[call] = self.names.qualified_name(call.func)
        return self._qnames[call]

    def calls_to(self, *qnames: str) -> List[cst.Call]:
        wanted = set(qnames)
        if self._call_qnames is None:  # rules ask this many times: resolve every call once
            self._call_qnames = [(c, self.call_qname(c)) for c in self.calls]
        return [c for c, q in self._call_qnames if q in wanted]

    def qualified_name(self, expr) -> Optional[str]:
        return self.names.qualified_name(expr)

    def parent(self, node):
        return self.names.parent(node)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # --- positions ----------------------------------------------------------------------------
    def _range(self, node: cst.CSTNode):
        if self._positions is None:
            from ckptlint.engine.positions import Positions

            self._positions = (Positions(self.module) if self._reuse is None
                               else self._reuse.positions(self.module, self.lines))
        found = self._positions.span(node)
        if found is None:
            raise KeyError(node)
        return found

    def start(self, node) -> Location:
        return self._range(node)[0]

    def end(self, node) -> Location:
        return self._range(node)[1]

    def offset(self, loc: Location) -> int:
        return self.lines.offset(loc)

    def value_end(self, expr: cst.CSTNode) -> int:
        """The offset just after `expr` with its own closing parentheses: `(a if b else c)`
        ends after the `)`, where a node's position ends before it."""
        pos = self.offset(self.end(expr))
        for _ in getattr(expr, "rpar", ()):
            while pos < len(self.text):
                c = self.text[pos]
                if c == "#":
                    while pos < len(self.text) and self.text[pos] not in "\r\n":
                        pos += 1
                elif c in " \t\r\n\\\x0c":
                    pos += 1
                else:
                    break
            if self.text.startswith(")", pos):
                pos += 1
        return pos

    # --- edits ------------------------------------------------------------------------------------
    def insert_at(self, offset: int, content: str) -> Edit:
        loc = self.lines.location(offset)
        return Edit(loc, loc, content)

    def replace(self, node, content: str) -> Edit:
        return Edit(self.start(node), self.end(node), content)

    def delete_span(self, start: int, end: int) -> Edit:
        return Edit(self.lines.location(start), self.lines.location(end), "")

    def add_keyword(self, call: cst.Call, keyword: str) -> Edit:
        """Insert `keyword=value` ruff-style, after the last argument (a trailing comma stays
        trailing), in the call's own layout: on a line of its own when every argument has one,
        on a new line aligned with the first argument when the line would grow past the
        project's line length; into empty parentheses when there is none."""
        if not call.args:
            return self.insert_at(self.offset(self.end(call)) - 1, keyword)
        last = call.args[-1]
        end = self.value_end(last.value)
        if self._one_per_line(call):
            indent = self._indent_at(self.start(last))
            if isinstance(last.comma, cst.Comma):  # after the comma and any comment
                line_end = self.offset(self.end(last.comma))
                while line_end < len(self.text) and self.text[line_end] not in "\r\n":
                    line_end += 1
                return self.insert_at(line_end, f"{self.lines.newline(self.start(last).row)}{indent}{keyword},")
            return self.insert_at(end, f",{self.lines.newline(self.start(last).row)}{indent}{keyword}")
        at = self.lines.location(end)
        limit = getattr(self.settings, "line_length", None)
        first = self.start(call.args[0])
        aligned = first.row == self.end(call.func).row  # `f(a,` then `  b)`: align with `a`
        if limit and aligned and len(self.lines.line(at.row).rstrip("\r\n")) + len(keyword) + 2 > limit:
            return self.insert_at(end, f",{self.lines.newline(at.row)}{' ' * (first.column - 1)}{keyword}")
        return self.insert_at(end, f", {keyword}")

    def _one_per_line(self, call: cst.Call) -> bool:
        """`f(\n    a,\n    b=1,\n)`: each argument starts a line below the parenthesis, and
        the closing parenthesis has a line of its own."""
        rows = [self.start(a).row for a in call.args]
        closing = self.end(call).row
        return (rows[0] > self.end(call.func).row and closing > self.end(call.args[-1]).row
                and len(set(rows)) == len(rows) and all(
                    self.lines.line(r)[: self.start(a).column - 1].strip() == "" for r, a in zip(rows, call.args)))

    def _indent_at(self, loc: Location) -> str:
        return self.lines.line(loc.row)[: loc.column - 1]

    def quoted(self, value: str, near: Optional[cst.CSTNode] = None) -> str:
        """A string literal for `value` in the quotes the code around uses: those of the other
        strings of `near` (a call), else the file's usual ones; double quotes when unsure."""
        def style(strings) -> Optional[str]:
            counts = {"'": 0, '"': 0}
            for s in strings:
                q = s.quote if isinstance(s, cst.SimpleString) else None
                if q in counts:
                    counts[q] += 1
            if counts["'"] == counts['"']:
                return None
            return "'" if counts["'"] > counts['"'] else '"'

        found = None
        if near is not None:
            found = style(n for n in self.nodes(cst.SimpleString) if self._within(n, near))
        if found is None:
            found = style(self.nodes(cst.SimpleString)) or '"'
        return f"{found}{value}{found}"

    def _within(self, node, outer) -> bool:
        p = node
        for _ in range(64):
            if p is None:
                return False
            if p is outer:
                return True
            p = self.parent(p)
        return False

    def remove_arg(self, call: cst.Call, arg: cst.Arg) -> Edit:
        args = list(call.args)
        i = args.index(arg)
        if len(args) == 1:
            start = self.offset(self.start(arg))
            end = self.value_end(arg.value)
            # also swallow a trailing comma and spaces before `)`
            rest = self.text[end:]
            stripped = rest.lstrip(" \t")
            if stripped.startswith(","):
                end += len(rest) - len(stripped) + 1
            return self.delete_span(start, end)
        if i < len(args) - 1:
            return self.delete_span(self.offset(self.start(arg)), self.offset(self.start(args[i + 1])))
        return self.delete_span(self.value_end(args[i - 1].value), self.value_end(arg.value))

    # --- reporting ------------------------------------------------------------------------------
    def report(
        self,
        node: cst.CSTNode,
        message: str,
        edits: Sequence[Edit] = (),
        applicability: str = SAFE,
        fix_message: Optional[str] = None,
        code: Optional[str] = None,
        name: Optional[str] = None,
        help: Optional[str] = None,
    ) -> Diagnostic:
        """`message` is the headline (at most 100 characters: what is wrong, here); `help`
        says why, and how to fix it, for a person who asks (`--output-format full`)."""
        rule = self.rule
        start, end = self.start(node), self.end(node)
        message, help = fit_headline(message, help)
        fix = None
        if edits:
            fix = Fix(applicability, fix_message or rule.fix_title or "Apply fix", tuple(edits))
        diag = Diagnostic(
            code=code or rule.code,
            name=name or rule.name,
            message=message,
            filename=self.path,
            location=start,
            end_location=end,
            fix=fix,
            noqa_row=start.row,
            severity=rule.severity(),
            help=help,
        )
        if rule.docs_url:  # a plugin's rule, documented elsewhere
            diag.extra["url"] = rule.docs_url
        self.diagnostics.append(diag)
        return diag
