"""Cheap tests that decide which files (and which rules) need the LibCST pass.

Everything here is conservative: a rule is dropped for a file only when it provably cannot
fire there, so diagnostics and fixes are the same with and without triage
(tests/test_triage.py checks that on every rule example and more).

1. Text triggers: plain substrings and regexes that start with a literal, derived from what
   the rule fires on (`Rule.text_triggers`, `Rule.text_patterns`: its `requires_text`, else
   the names it must spell).
   A file no enabled rule is triggered by is never parsed (not even for syntax errors).
2. Names and modules: a rule that declares `Rule.names` fires only where the code spells
   one of those identifiers as an attribute or an imported name, and one that declares
   `Rule.modules` only in a module that imports one of those packages; with both, only on
   `R.x.name` where R could stand for such an import (a light import/alias table, see
   Facts). A text scan that keeps every place code could spell them (`by_text`, before
   any parse), then one walk of the stdlib AST the syntax check built (`by_tree`; comments
   and strings do not count), decide.
"""

from __future__ import annotations

import ast
import re
from typing import Dict, Iterable, Optional, Set

from ckptlint.analysis.ast_walk import walk
from ckptlint.analysis.qnames import canonical


def by_triggers(text: str, rules: Iterable) -> list:
    """Rules with no text triggers, or one of whose triggers occurs in the text."""
    return [r for r in rules if (not r.text_triggers and not r.text_patterns)
            or any(t in text for t in r.text_triggers)
            or any(p.search(text) for p in r.text_patterns)]


def _ident_char(c: str) -> bool:
    # Non-ASCII counts as a boundary: that only keeps more files, never fewer.
    return c == "_" or (c.isascii() and c.isalnum())


def has_word(text: str, word: str) -> bool:
    """`word` occurs with no identifier character right before or after it."""
    n = len(word)
    i = text.find(word)
    while i >= 0:
        if (i == 0 or not _ident_char(text[i - 1])) and (i + n >= len(text) or not _ident_char(text[i + n])):
            return True
        i = text.find(word, i + 1)
    return False


class Facts:
    """What one walk of the stdlib AST tells about a module, for the rules' names and modules.

    Mirrors how ckptlint.analysis.names resolves a qualified name: from the root name of a
    dotted expression (`T` in `T.serialization.load`), bound by an import or by an
    assignment alias, or from a `from m import name` binding. A rule whose qualified names
    start in `modules` and end in `names` can fire only on `R.x.name` where R is bound by an
    import of one of those packages or by an alias assignment (`R = <name or attribute>`,
    kept whatever it names), or where `name` is imported from one of them. A root bound only
    otherwise (a parameter such as `self`, a loop variable, `m = Model()`) never resolves
    to a qualified name, so `self.save(...)` does not keep a rule on `torch.save`."""

    def __init__(self, tree: ast.AST, module_name: Optional[str], words: Set[str], probing=()):
        self.spelled: Set[str] = set()  # every identifier the code spells
        self.packages: Set[str] = set()  # top-level packages imported from
        self.import_tops: Dict[str, Set[str]] = {}  # local name -> packages its imports come from
        self.alias_bound: Set[str] = set()  # names bound by `name = <name or attribute>`
        self.attr_roots: Dict[str, Set[str]] = {}  # word -> root names of `R....word`
        self.imported_words: Dict[str, Set[str]] = {}  # word -> packages it is imported from
        # word -> what `from m import word` names (canonical), None when it cannot tell
        self.imported_qnames: Dict[str, Set[Optional[str]]] = {}
        self.probed: Set[int] = set()  # ids of the `probing` rules one of whose probes said yes
        self.star = False  # `from m import *`: any name may be bound by it (analysis/project.py)
        probes: Dict[type, list] = {}
        for r in probing:
            for pt in r.probe_types:
                probes.setdefault(pt, []).append(r)
        own = (module_name or "").split(".")[0]
        spelled, add = self.spelled, self.spelled.add
        for node in walk(tree)[0]:
            t = type(node)
            if t in probes:
                for r in probes[t]:
                    if id(r) not in self.probed and r.probe(node):
                        self.probed.add(id(r))
            if t is ast.Name:
                add(node.id)
            elif t in _ALIASING and type(node.value) in _ALIAS_VALUES:
                targets = node.targets if t is ast.Assign else (node.target,)
                self.alias_bound.update(n.id for n in targets if type(n) is ast.Name)
            elif t is ast.Attribute:
                add(node.attr)
                if node.attr in words:
                    root = node.value
                    while type(root) is ast.Attribute:
                        root = root.value
                    if type(root) is ast.Name:
                        self.attr_roots.setdefault(node.attr, set()).add(root.id)
            elif t is ast.Import:
                for a in node.names:
                    parts = a.name.split(".")
                    spelled.update(parts)
                    if a.asname:
                        add(a.asname)
                    self.packages.add(parts[0])
                    self._bind_import(a.asname or parts[0], parts[0])
                    for w in words.intersection(parts[1:]):
                        self._import_word(w, parts[0], None)
            elif t is ast.ImportFrom:
                if node.level:
                    top = own or "."  # unresolvable without a package: never a match
                else:
                    top = (node.module or "").split(".")[0]
                if node.module:
                    spelled.update(node.module.split("."))
                    for w in words.intersection(node.module.split(".")):
                        self._import_word(w, top, None)
                self.packages.add(top)
                for a in node.names:
                    if a.name == "*":
                        self.star = True
                    spelled.update(a.name.split("."))
                    if a.asname:
                        add(a.asname)
                    self._bind_import(a.asname or a.name, top)
                    if a.name in words:
                        full = canonical(f"{node.module}.{a.name}") if not node.level and node.module else None
                        self._import_word(a.name, top, full)
            elif t is ast.keyword:
                if node.arg:
                    add(node.arg)
            elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
                add(node.name)
            elif t is ast.arg:
                add(node.arg)
            elif t is ast.ExceptHandler or t in _MATCH_BINDERS:
                name = getattr(node, "name", None) or getattr(node, "rest", None)
                if name:
                    add(name)
            elif t in _SCOPE_DECLS:
                spelled.update(node.names)

    def _import_word(self, word: str, top: str, qname: Optional[str]) -> None:
        self.imported_words.setdefault(word, set()).add(top)
        self.imported_qnames.setdefault(word, set()).add(qname)

    def _bind_import(self, local: str, top: str) -> None:
        self.import_tops.setdefault(local, set()).add(top)

    def could_fire(self, rule) -> bool:
        names, modules = set(rule.names), set(rule.modules)
        if names and not names & self.spelled:
            return False
        if modules and not modules & self.packages and not self.star:
            return False
        if not (names and modules):
            return True
        wanted = set(rule.qualnames)
        for word in names:
            if modules & self.imported_words.get(word, set()):
                got = self.imported_qnames.get(word, set())
                # `from torch.utils.cpp_extension import load` is not torch.load
                if not wanted or None in got or wanted & got:
                    return True
            for root in self.attr_roots.get(word, ()):
                if root in self.alias_bound or modules & self.import_tops.get(root, set()):
                    return True
        return self.star  # a star import may bind the name, or the root of `R.x.name`


# the bindings names.py follows as aliases: a plain name bound to a name or attribute
_ALIASING = (ast.Assign, ast.AnnAssign, ast.NamedExpr)
_ALIAS_VALUES = (ast.Name, ast.Attribute)
_MATCH_BINDERS = tuple(getattr(ast, n) for n in ("MatchAs", "MatchStar", "MatchMapping") if hasattr(ast, n))
_SCOPE_DECLS = (ast.Global, ast.Nonlocal)


_SPACE = " \t\f\r\n\\"
_STAR_IMPORT = re.compile(r"\bimport[ \t\\(]*\*")


def _could_be_name_use(text: str, i: int) -> bool:
    """May the identifier at text[i:] be an attribute (`x.load`) or an imported name
    (`from m import a, load`)? Those are the only spellings a qualified name can come from
    (a bare `load` resolves only through such an import or an `x = m.load` alias). Looks
    back over spaces and line continuations; when that crosses into a line with a `#`,
    it cannot tell a comment apart and says yes."""
    j = i - 1
    while j >= 0 and text[j] in _SPACE:
        if text[j] == "\n":
            line_start = text.rfind("\n", 0, j) + 1
            if "#" in text[line_start:j]:
                return True
        j -= 1
    if j < 0:
        return False
    if text[j] in ".,(":
        return True
    return text.endswith("import", 0, j + 1) and (j < 6 or not _ident_char(text[j - 6]))


def uses_name(text: str, word: str) -> bool:
    """`word` occurs as a whole word in a place where code could spell an attribute or an
    imported name. Comments and prose mostly fail this; code that uses `word` never does."""
    n = len(word)
    i = text.find(word)
    while i >= 0:
        if ((i == 0 or not _ident_char(text[i - 1]))
                and (i + n >= len(text) or not _ident_char(text[i + n]))
                and _could_be_name_use(text, i)):
            return True
        i = text.find(word, i + 1)
    return False


def _could_import(text: str, packages, module_name: Optional[str]) -> bool:
    own = (module_name or "").split(".")[0]
    return own in packages or any(has_word(text, p) for p in packages)


def by_text(text: str, rules: list, module_name: Optional[str] = None) -> list:
    """Drop the rules whose `names` the text never spells where code could, or whose
    `modules` it never names. Rules without names or modules stay. No parse."""
    named = [r for r in rules if r.names or r.modules]
    if not named:
        return rules
    words = {w for r in named for w in r.names}
    # a star import may bind `load` itself, or `torch`: then a bare name counts, and any module
    star = _STAR_IMPORT.search(text) is not None
    present = {w for w in words if (has_word if star else uses_name)(text, w)}
    dropped = {id(r) for r in named if not (
        (not r.names or present.intersection(r.names))
        and (not r.modules or star or _could_import(text, r.modules, module_name)))}
    return [r for r in rules if id(r) not in dropped]


def by_tree(tree: ast.AST, rules: list, module_name: Optional[str] = None) -> list:
    """Drop the rules with names, modules or probes that the code (its stdlib AST: comments
    and strings do not count) provably never gives them anything to fire on."""
    named = [r for r in rules if r.names or r.modules]
    probing = [r for r in rules if r.probe_types]
    if not named and not probing:
        return rules
    facts = Facts(tree, module_name, {w for r in named for w in r.names}, probing)
    return [r for r in rules
            if (not (r.names or r.modules) or facts.could_fire(r))
            and (not r.probe_types or id(r) in facts.probed)]


def by_names(text: str, rules: list, path: str = "<unknown>", module_name: Optional[str] = None) -> list:
    """by_text, then by_tree on a parse of the text (kept whole when it does not parse)."""
    rules = by_text(text, rules, module_name)
    if not any(r.names or r.modules or r.probe_types for r in rules):
        return rules
    try:
        tree = ast.parse(text, filename="<ckptlint>")
    except Exception:  # the caller reports syntax errors; keep every rule
        return rules
    return by_tree(tree, rules, module_name)
