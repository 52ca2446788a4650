"""Scopes, bindings and qualified names, in one pass over a LibCST tree.

This is deliberately lighter than LibCST's ScopeProvider/QualifiedNameProvider: one visitor
records bindings per scope, parents and a visit order; names are resolved only when a rule
asks, by the usual Python scoping rules. Resolution is deterministic (no sets are iterated).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import libcst as cst

from ckptlint.analysis.qnames import CANONICAL, canonical  # noqa: F401 (re-exported)

_BUILTINS = frozenset(dir(builtins))

@dataclass
class Binding:
    name: str
    kind: str  # import | assign | def | class | param | other
    seq: int  # visit order, to tell which binding precedes a use
    node: cst.CSTNode
    qname: Optional[str] = None  # for imports: what the name stands for
    value: Optional[cst.BaseExpression] = None  # for simple assignments: the right-hand side


@dataclass
class Scope:
    kind: str  # module | class | function | lambda | comprehension
    parent: Optional["Scope"]
    node: cst.CSTNode
    bindings: Dict[str, List[Binding]] = field(default_factory=dict)
    global_names: set = field(default_factory=set)
    nonlocal_names: set = field(default_factory=set)
    star_imports: List[str] = field(default_factory=list)

    def add(self, binding: Binding) -> None:
        self.bindings.setdefault(binding.name, []).append(binding)

    def encloses(self, other: Optional["Scope"]) -> bool:
        """Is `other` this scope or one nested in it?"""
        while other is not None and other is not self:
            other = other.parent
        return other is not None


def dotted(expr: cst.CSTNode) -> Optional[str]:
    """`a.b.c` as a string, or None for anything that is not a plain dotted name."""
    parts: List[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def _module_name(node: Union[cst.Attribute, cst.Name, None]) -> str:
    return dotted(node) if node is not None else ""


def _is_none(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


class _Collector:
    """Records scopes and bindings node by node (driven by _walk, or by LibCST's visit() in
    tests). Not a CSTVisitor subclass, so that importing this module does not load LibCST:
    rule modules import it, and a run whose files have no trigger never parses."""

    def __init__(self, names: "Names"):
        self.n = names
        self.stack: List[cst.CSTNode] = []
        self.scope = names.module_scope
        self.seq = 0
        self.table = _visit_table()

    # --- bookkeeping -------------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        n = self.n
        self.seq += 1
        n.seq[node] = self.seq
        if self.stack:
            n.parents[node] = self.stack[-1]
        n.scopes[node] = self.scope
        self.stack.append(node)
        handler = self.table.get(type(node))
        if handler is not None:
            handler(self, node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        if self.scope.node is original_node:
            self.scope = self.scope.parent or self.scope

    def _bind(self, name: str, kind: str, node, qname=None, value=None, scope=None) -> None:
        target = scope or self.scope
        if name in target.global_names:
            target = self.n.module_scope
        target.add(Binding(name, kind, self.seq, node, qname, value))

    def _push(self, kind: str, node) -> None:
        self.scope = Scope(kind, self.scope, node)
        self.n.all_scopes.append(self.scope)

    def _bind_target(self, target, kind: str, value=None) -> None:
        if isinstance(target, cst.Name):
            self._bind(target.value, kind, target, value=value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._bind_target(el.value, "other")
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, "other")

    # --- binding forms ------------------------------------------------------------------
    def v_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _module_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._bind(alias.asname.name.value, "import", node, qname=full)
            else:
                top = full.split(".")[0]
                self._bind(top, "import", node, qname=top)

    def v_import_from(self, node: cst.ImportFrom) -> None:
        module = "." * len(node.relative) + _module_name(node.module)
        module = self.n.absolute_module(module)
        if isinstance(node.names, cst.ImportStar):
            self.scope.star_imports.append(module)
            return
        for alias in node.names:
            name = alias.name.value if isinstance(alias.name, cst.Name) else dotted(alias.name)
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            qname = f"{module}.{name}" if module and not module.endswith(".") else f"{module}{name}"
            self._bind(local, "import", node, qname=qname)

    def v_assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._bind_target(t.target, "assign", node.value)

    def v_ann_assign(self, node: cst.AnnAssign) -> None:
        self._bind_target(node.target, "assign" if node.value is not None else "other", node.value)

    def v_aug_assign(self, node: cst.AugAssign) -> None:
        self._bind_target(node.target, "other")

    def v_named_expr(self, node: cst.NamedExpr) -> None:
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value, "assign", node.target, value=node.value, scope=scope)

    def v_for(self, node: cst.For) -> None:
        self._bind_target(node.target, "other")

    def v_comp_for(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, "other")

    def v_with_item(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, "other")

    def v_except(self, node) -> None:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self._bind(node.name.name.value, "other", node)

    def v_function(self, node: cst.FunctionDef) -> None:
        self._bind(node.name.value, "def", node)
        self._push("function", node)
        self._bind_params(node.params)

    def v_lambda(self, node: cst.Lambda) -> None:
        self._push("lambda", node)
        self._bind_params(node.params)

    def _bind_params(self, params: cst.Parameters) -> None:
        every = list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                every.append(extra)
        for p in every:
            self._bind(p.name.value, "param", p)

    def v_class(self, node: cst.ClassDef) -> None:
        self._bind(node.name.value, "class", node)
        self._push("class", node)

    def v_comp(self, node) -> None:
        self._push("comprehension", node)

    def v_global(self, node: cst.Global) -> None:
        for item in node.names:
            self.scope.global_names.add(item.name.value)

    def v_nonlocal(self, node: cst.Nonlocal) -> None:
        for item in node.names:
            self.scope.nonlocal_names.add(item.name.value)


_VISIT: Dict[type, object] = {}


def _visit_table() -> Dict[type, object]:
    if not _VISIT:
        _VISIT.update({
            cst.Import: _Collector.v_import,
            cst.ImportFrom: _Collector.v_import_from,
            cst.Assign: _Collector.v_assign,
            cst.AnnAssign: _Collector.v_ann_assign,
            cst.AugAssign: _Collector.v_aug_assign,
            cst.NamedExpr: _Collector.v_named_expr,
            cst.For: _Collector.v_for,
            cst.CompFor: _Collector.v_comp_for,
            cst.WithItem: _Collector.v_with_item,
            cst.ExceptHandler: _Collector.v_except,
            cst.FunctionDef: _Collector.v_function,
            cst.Lambda: _Collector.v_lambda,
            cst.ClassDef: _Collector.v_class,
            cst.ListComp: _Collector.v_comp,
            cst.SetComp: _Collector.v_comp,
            cst.DictComp: _Collector.v_comp,
            cst.GeneratorExp: _Collector.v_comp,
            cst.Global: _Collector.v_global,
            cst.Nonlocal: _Collector.v_nonlocal,
        })
        if hasattr(cst, "ExceptStarHandler"):
            _VISIT[cst.ExceptStarHandler] = _Collector.v_except
    return _VISIT


# --- traversal ------------------------------------------------------------------------------
# LibCST's visit() rebuilds every node it passes (a visitor may replace children), which costs
# about half a parse. Names only reads the tree, so it walks the fields itself, in the order
# LibCST visits them, learnt from LibCST's on_visit_attribute calls: same nodes, same order,
# same parents (tests/test_names_walk.py). A few node types skip a field when it is None
# (FormattedStringExpression.format_spec); a node that has a value where the learnt order
# has no place for it is learnt again and the orders merged.
_FIELDS: Dict[type, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {}  # type -> (order, others)


def _field_order(root: cst.CSTNode) -> List[str]:
    class FieldOrder(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return node is root  # one level only

        def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
            if node is root:
                fields.append(attribute)

    fields: List[str] = []
    root.visit(FieldOrder())
    return fields


def _libcst_visit(module: cst.Module, collector: "_Collector") -> None:
    """The same collection driven by LibCST's own traversal (tests compare the two)."""

    class Adapter(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return collector.on_visit(node)

        def on_leave(self, original_node: cst.CSTNode) -> None:
            collector.on_leave(original_node)

    module.visit(Adapter())


def _merge(old: List[str], new: List[str]) -> List[str]:
    out = list(old)
    for i, name in enumerate(new):
        if name not in out:
            before = new[i - 1] if i else None
            out.insert(out.index(before) + 1 if before in out else 0, name)
    return out


def _learn(node: cst.CSTNode):
    import dataclasses

    kind = type(node)
    order = _merge(list(_FIELDS[kind][0]) if kind in _FIELDS else [], _field_order(node))
    others = tuple(f.name for f in dataclasses.fields(node) if f.name not in order)
    entry = _FIELDS[kind] = (tuple(order), others)
    return entry


_NODE_TYPES: Dict[type, bool] = {}  # isinstance(x, CSTNode) goes through ABC machinery: slow


def _is_node(value) -> bool:
    kind = type(value)
    found = _NODE_TYPES.get(kind)
    if found is None:
        found = _NODE_TYPES[kind] = isinstance(value, cst.CSTNode)
    return found


def _has_nodes(value) -> bool:
    if _is_node(value):
        return True
    return (type(value) is tuple or type(value) is list) and any(_is_node(c) for c in value)


def _walk(node: cst.CSTNode, visitor) -> None:
    if visitor.on_visit(node):
        entry = _FIELDS.get(type(node))
        if entry is None or (entry[1] and any(_has_nodes(getattr(node, f)) for f in entry[1])):
            entry = _learn(node)
        for name in entry[0]:
            value = getattr(node, name)
            if type(value) is tuple or type(value) is list:
                for child in value:
                    if _is_node(child):
                        _walk(child, visitor)
            elif _is_node(value):
                _walk(value, visitor)
    visitor.on_leave(node)


class Names:
    """Scopes and bindings of one module, and qualified-name lookups on demand."""

    def __init__(self, module: cst.Module, module_name: Optional[str] = None, is_package: bool = False,
                 fast: bool = True, walks: Optional["StatementWalks"] = None):
        """`walks`: what a previous Names of the same module name kept (the language server's,
        lsp/incremental.py): top-level statements found there are not walked again."""
        self.module_name = module_name or ""
        self.is_package = is_package  # an __init__.py: `from . import x` means its own package
        # name -> its qualified name when only a star import binds it (`from .basics import *`),
        # or None; set by whoever knows the project (FileContext asks its project index)
        self.star_lookup: Optional[Callable[[str], Optional[str]]] = None
        self._starred: Dict[str, Optional[str]] = {}
        self.module_scope = Scope("module", None, module)
        self.all_scopes: List[Scope] = [self.module_scope]
        self.parents: Dict[cst.CSTNode, cst.CSTNode] = {}
        self.scopes: Dict[cst.CSTNode, Scope] = {}
        self.seq: Dict[cst.CSTNode, int] = {}
        if walks is not None:
            walks.build(self, module)
            return
        collector = _Collector(self)
        if fast:
            _walk(module, collector)
        else:
            _libcst_visit(module, collector)

    # --- relative imports ----------------------------------------------------------------
    def absolute_module(self, module: str) -> str:
        if not module.startswith("."):
            return module
        level = len(module) - len(module.lstrip("."))
        rest = module[level:]
        if not self.module_name:
            return module  # unknown package: keep the relative spelling
        parts = self.module_name.split(".")
        package = parts if self.is_package else parts[:-1]
        if level - 1 > len(package):
            return module  # goes above the top package: leave it unresolved
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, rest] if rest else base)

    # --- lookups ----------------------------------------------------------------------------
    def parent(self, node: cst.CSTNode) -> Optional[cst.CSTNode]:
        return self.parents.get(node)

    def scope(self, node: cst.CSTNode) -> Scope:
        return self.scopes.get(node, self.module_scope)

    def binding(self, name_node: cst.Name) -> Optional[Binding]:
        """The binding a use of a name most likely refers to (None when unknown)."""
        found = self._candidates(name_node.value, self.scope(name_node), self.seq.get(name_node))
        return found[-1] if found else None

    def resolving_scope(self, name: str, scope: Scope):
        """(scope that binds name, True when it is the scope of the use itself)."""
        if name in scope.global_names:
            s = self.module_scope
            return (s, s is scope) if name in s.bindings else (None, False)
        first = True
        s: Optional[Scope] = scope
        while s is not None:
            skip_class = s.kind == "class" and not first
            if not skip_class and name in s.bindings and not (first and name in s.nonlocal_names):
                return s, first
            s = s.parent
            first = False
        return None, False

    def _candidates(self, name: str, scope: Scope, use_seq: Optional[int]) -> List[Binding]:
        owner, same = self.resolving_scope(name, scope)
        if owner is None:
            return []
        binds = owner.bindings[name]
        if len(binds) > 1:
            # `try: import torch / except ImportError: torch = None` still means torch
            not_none = [b for b in binds if not (b.kind == "assign" and _is_none(b.value))]
            binds = not_none or binds
        if same and use_seq is not None:
            before = [b for b in binds if b.seq < use_seq]
            if before:
                return [before[-1]]
        return binds

    def resolve_name(self, name: str, scope: Scope, use_seq: Optional[int], _depth: int = 0) -> Optional[str]:
        binds = self._candidates(name, scope, use_seq)
        if not binds:
            owner, _ = self.resolving_scope(name, scope)
            if owner is None and self.module_scope.star_imports:
                return self._star_bound(name)
            if owner is None and name in _BUILTINS:
                return f"builtins.{name}"
            return None
        qnames = []
        for b in binds:
            if b.kind == "import":
                qnames.append(b.qname)
            elif b.kind == "assign" and _depth < 8 and isinstance(b.value, (cst.Name, cst.Attribute)):
                # `load = torch.load` aliases like an import
                q = self.qualified_name(b.value, _depth + 1)
                if q is None:
                    return None
                qnames.append(q)
            else:
                return None
        first = qnames[0]
        return first if all(q == first for q in qnames) else None

    def _star_bound(self, name: str) -> Optional[str]:
        """A name no statement of this module binds, in a module with star imports: what they
        bind it to."""
        if name not in self._starred:  # (never a builtin: another package's star may bind it)
            self._starred[name] = self.star_lookup(name) if self.star_lookup is not None else None
        return self._starred[name]

    def qualified_name(self, expr: cst.CSTNode, _depth: int = 0) -> Optional[str]:
        """Canonical qualified name of a dotted expression (`T.load` -> `torch.load`)."""
        attrs: List[str] = []
        while isinstance(expr, cst.Attribute):
            attrs.append(expr.attr.value)
            expr = expr.value
        if not isinstance(expr, cst.Name):
            return None
        base = self.resolve_name(expr.value, self.scope(expr), self.seq.get(expr), _depth)
        if base is None:
            return None
        return canonical(".".join([base, *reversed(attrs)]))


class StatementWalks:
    """A module's names walk kept per statement, for the next Names of an edited version of
    it: a kept statement's part is shifted to where the statement now is instead of walked
    again, and the parent and scope tables of the last Names are updated in place (only
    looked up, never iterated; `seq` is put together from the parts' own orders: _Order).
    Each top-level statement has a part, and so has each compound statement of a class body
    (a method): the class's own part then holds the class's outline, with a hole where each
    method goes, so an edit in one method walks that method and the outline again, not the
    class. One Names at a time may use them (they share one module scope): the language
    server lints a document once at a time."""

    def __init__(self):
        self.walks: Dict[cst.CSTNode, _StatementWalk] = {}
        self.parents: Dict[cst.CSTNode, cst.CSTNode] = {}
        self.scopes: Dict[cst.CSTNode, Scope] = {}
        self.order: Dict[cst.CSTNode, Tuple[_StatementWalk, int]] = {}  # node -> (its part, its order there)
        self.outside: List[cst.CSTNode] = []  # the last module's nodes outside its statements
        # one module scope for every Names made here: the scope tables keep pointing to it
        self.module_scope = Scope("module", None, None)

    def build(self, names: "Names", module: cst.Module) -> None:
        """Fill `names` as Names.__init__'s own walk of `module` would."""
        live: set = set()
        for stmt in module.body:
            self._live(stmt, live)
        gone = [s for s in self.walks if s not in live]
        if len(gone) > len(self.walks) // 2:  # parsed anew: cheaper to start again
            self.walks, self.parents, self.scopes, self.order, gone = {}, {}, {}, {}, []
        for stmt in gone:
            for n in self.walks.pop(stmt).own:
                del self.parents[n], self.scopes[n], self.order[n]
        for n in self.outside:
            self.parents.pop(n, None)
            self.scopes.pop(n, None)
        names.parents, names.scopes, names.seq = self.parents, self.scopes, _Order(self.order)
        scope = self.module_scope
        scope.node, scope.bindings, scope.global_names, scope.nonlocal_names, scope.star_imports = module, {}, set(), set(), []
        names.module_scope, names.all_scopes = scope, [scope]
        collector = _Collector(names)
        collector.on_visit(module)
        self.outside = [module]
        for name in (_FIELDS.get(cst.Module) or _learn(module))[0]:
            if name != "body":
                for child in getattr(module, name):
                    _walk(child, collector)
                    self.outside.extend(_subtree(child))
                continue
            for stmt in module.body:
                walk = self._walk_of(stmt, names)
                walk.add_to(names, collector.seq, names.module_scope)
                self.parents[stmt] = module
                collector.seq += walk.size
        collector.on_leave(module)

    def _live(self, stmt, live: set) -> None:
        """Mark the statements whose parts the module still uses (without walking anything)."""
        live.add(stmt)
        walk = self.walks.get(stmt)
        if walk is not None:
            for hole in walk.holes:
                self._live(hole.walk.stmt, live)
        elif _has_parts(stmt):
            for s in stmt.body.body:
                if isinstance(s, cst.BaseCompoundStatement):
                    self._live(s, live)

    def _walk_of(self, stmt, names: "Names", in_class: bool = False) -> "_StatementWalk":
        walk = self.walks.get(stmt)
        if walk is None:
            inner = None
            if _has_parts(stmt):
                inner = {s: self._walk_of(s, names, True) for s in stmt.body.body
                         if isinstance(s, cst.BaseCompoundStatement)}
            walk = _StatementWalk(stmt, names, inner, in_class)
            if walk.whole and inner:  # the class declares globals: its statements are walked with it
                for part in inner.values():
                    self._drop(part)
            self.walks[stmt] = walk
            self.parents.update(walk.parents)
            self.scopes.update(walk.nested)
            self.order.update(zip(walk.own, zip(repeat(walk), walk.orders)))
        return walk

    def _drop(self, walk: "_StatementWalk") -> None:
        for hole in walk.holes:
            self._drop(hole.walk)
        del self.walks[walk.stmt]
        for n in walk.own:
            self.parents.pop(n, None)
            self.scopes.pop(n, None)
            self.order.pop(n, None)


def _has_parts(stmt) -> bool:
    return isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock)


def _subtree(node: cst.CSTNode) -> List[cst.CSTNode]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.children)
    return out


@dataclass
class _Hole:
    walk: "_StatementWalk"  # the part of the statement that goes here
    seq: int  # visit orders before it, counted from the outer statement (its first node is 1)
    scope: Scope  # the scope it is in (the class's)
    scopes: int  # how many of the outer part's scopes open before it


class _StatementWalk:
    """The part of a module's walk one statement makes, with visit orders counted from the
    statement (its first node is 1). Scopes opened inside it are kept and shared by the Names
    made from it (add_to moves their bindings' orders and their parent). `inner`: parts of the
    statements of its class body walked on their own ({statement: part}), each left as a hole
    of its size; when the class body declares `global`, `nonlocal` or star-imported names,
    they are walked with it instead (`whole`): their bindings depend on those. `in_class`: the
    statement is in a class body (its bindings go to the class's scope, a `global` name's to
    the module's)."""

    def __init__(self, stmt: cst.CSTNode, names: "Names", inner: Optional[Dict[cst.CSTNode, "_StatementWalk"]] = None,
                 in_class: bool = False):
        self.stmt = stmt
        self.whole = False
        if not (inner and self._walk(names, inner, in_class)):
            self.whole = bool(inner)
            self._walk(names, None, in_class)

    def _walk(self, names: "Names", inner, in_class: bool) -> bool:
        """Walk the statement (its inner statements as holes); False when holes will not do."""
        here = Names.__new__(Names)  # a Names of this statement alone, its own module scope
        here.module_name, here.is_package = names.module_name, names.is_package
        here.module_scope = Scope("module", None, None)
        here.all_scopes, here.parents, here.scopes, here.seq = [], {}, {}, {}
        collector = _Collector(here)
        self.module = here.module_scope
        self.top = top = Scope("class", here.module_scope, None) if in_class else here.module_scope
        collector.scope = top  # the scope the statement is in
        self.holes: List[_Hole] = []
        if inner:
            _walk_around(self.stmt, collector, inner, self.holes)
            for hole in self.holes:
                part = hole.walk.top
                if (part.global_names or part.nonlocal_names or part.star_imports
                        or hole.scope.global_names or hole.scope.nonlocal_names or hole.scope.star_imports):
                    return False
        else:
            _walk(self.stmt, collector)
        self.size = collector.seq  # nodes, the holes' included
        self.own = list(here.seq)  # its own nodes, in visit order
        self.orders = list(here.seq.values())  # theirs, counted from the statement
        self.runs = _runs(here.seq)  # (first order, nodes) of each run of consecutive orders
        self.parents = here.parents  # the statement itself has none here
        self.at_top = [n for n, sc in here.scopes.items() if sc is top]
        self.nested = {n: sc for n, sc in here.scopes.items() if sc is not top}
        self.opened = here.all_scopes  # scopes opened inside, in order
        self.rooted = [sc for sc in self.opened if sc.parent is top]  # their parent is where it is
        # each opened scope's bindings without the holes' (id: a Scope compares by value)
        self.kept = {id(sc): {k: list(v) for k, v in sc.bindings.items()} for sc in self.opened}
        self.base = 0  # where the nested scopes' binding orders count from now
        self.outer: Optional[Scope] = None  # the scope at_top was last mapped to
        return True

    def add_to(self, names: "Names", base: int, outer: Scope) -> None:
        """Record this statement's order and its part of `outer` (the scope it is in) in
        `names`, its first node coming after `base` (its parents and nested scopes are in the
        kept tables)."""
        module = names.module_scope
        if base != self.base:
            for kept in self.kept.values():
                for binds in kept.values():
                    for b in binds:
                        b.seq += base - self.base
            self.base = base
        for sc in self.rooted:
            sc.parent = outer
        filled = set()
        for hole in self.holes:  # the holes' bindings are added again, in order
            if id(hole.scope) not in filled:
                filled.add(id(hole.scope))
                hole.scope.bindings = {k: list(v) for k, v in self.kept[id(hole.scope)].items()}
        opened = run = 0
        for hole in self.holes:  # in visit order: its own nodes and scopes, the hole's, ...
            names.all_scopes.extend(self.opened[opened:hole.scopes])
            opened = hole.scopes
            while run < len(self.runs) and self.runs[run][0] <= hole.seq:
                self._number(names, base, run)
                run += 1
            hole.walk.add_to(names, base + hole.seq, hole.scope)
        names.all_scopes.extend(self.opened[opened:])
        for rest in range(run, len(self.runs)):
            self._number(names, base, rest)
        for sc in {id(h.scope): h.scope for h in self.holes}.values():
            for binds in sc.bindings.values():
                binds.sort(key=_seq)
            sc.bindings = dict(sorted(sc.bindings.items(), key=lambda item: item[1][0].seq))
        if outer is not self.outer:
            names.scopes.update(dict.fromkeys(self.at_top, outer))
            self.outer = outer
        for name, binds in self.top.bindings.items():
            outer.bindings.setdefault(name, []).extend(
                Binding(b.name, b.kind, b.seq + base, b.node, b.qname, b.value) for b in binds)
        if self.top is not self.module:  # `global` names bound in a class body's statement
            for name, binds in self.module.bindings.items():
                module.bindings.setdefault(name, []).extend(
                    Binding(b.name, b.kind, b.seq + base, b.node, b.qname, b.value) for b in binds)
        outer.global_names |= self.top.global_names
        outer.nonlocal_names |= self.top.nonlocal_names
        outer.star_imports.extend(self.top.star_imports)

    def _number(self, names: "Names", base: int, run: int) -> None:
        names.seq.add(self.runs[run][1])  # their orders come from self.base (_Order)


class _Order(Mapping):
    """Names.seq of a module put together from kept parts: a node's order is its part's base
    (set by add_to) plus its order in the part, so the nodes of parts an edit left alone are
    not entered again (a LibCST node hashes in Python: ~0.3 us each, 20 ms for 3,000 lines)."""

    def __init__(self, order: Dict[cst.CSTNode, Tuple["_StatementWalk", int]]):
        self._order = order  # kept: node -> (part, order in the part)
        self._walked: Dict[cst.CSTNode, int] = {}  # walked this time: the module, its header and footer
        self._runs: List[Sequence[cst.CSTNode]] = []  # every node, in visit order

    def __setitem__(self, node: cst.CSTNode, order: int) -> None:
        self._walked[node] = order
        self._runs.append((node,))

    def add(self, nodes: Sequence[cst.CSTNode]) -> None:
        self._runs.append(nodes)

    def get(self, node, default=None):
        found = self._order.get(node)
        if found is not None:
            return found[0].base + found[1]
        return self._walked.get(node, default)

    def __getitem__(self, node) -> int:
        found = self.get(node)
        if found is None:
            raise KeyError(node)
        return found

    def __contains__(self, node) -> bool:
        return node in self._order or node in self._walked

    def __iter__(self):
        return chain.from_iterable(self._runs)

    def __len__(self) -> int:
        return sum(map(len, self._runs))

    def of_types(self, types: tuple, select) -> list:
        """`select(nodes)` (the nodes of `types`) over every node in visit order; a kept
        part's share is kept with it."""
        out: list = []
        for run in self._runs:
            cache = getattr(run, "by_types", None)
            if cache is None:
                out.extend(select(run))
                continue
            found = cache.get(types)
            if found is None:
                found = cache[types] = select(run)
            out.extend(found)
        return out


class _Run(list):
    """Nodes of a part with consecutive orders, and what FileContext.nodes found among them."""

    __slots__ = ("by_types",)

    def __init__(self, nodes=()):
        super().__init__(nodes)
        self.by_types: Dict[tuple, list] = {}


def _seq(binding: Binding) -> int:
    return binding.seq


def _runs(seq: Dict[cst.CSTNode, int]) -> List[Tuple[int, List[cst.CSTNode]]]:
    runs: List[Tuple[int, List[cst.CSTNode]]] = []
    last = None
    for node, order in seq.items():
        if last is None or order != last + 1:
            runs.append((order, _Run()))
        runs[-1][1].append(node)
        last = order
    return runs


def _walk_around(node: cst.CSTNode, visitor: "_Collector", inner: dict, holes: List[_Hole]) -> None:
    """_walk, with the statements of `inner` left as holes of their size."""
    if visitor.on_visit(node):
        entry = _FIELDS.get(type(node))
        if entry is None or (entry[1] and any(_has_nodes(getattr(node, f)) for f in entry[1])):
            entry = _learn(node)
        for name in entry[0]:
            value = getattr(node, name)
            for child in (value if type(value) is tuple or type(value) is list else (value,)):
                if not _is_node(child):
                    continue
                part = inner.get(child)
                if part is None:
                    _walk_around(child, visitor, inner, holes) if isinstance(child, cst.IndentedBlock) else _walk(child, visitor)
                    continue
                holes.append(_Hole(part, visitor.seq, visitor.scope, len(visitor.n.all_scopes)))
                visitor.n.parents[child] = node
                visitor.seq += part.size
    visitor.on_leave(node)
