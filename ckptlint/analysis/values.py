"""What does this expression hold? An nn.Module, a wrapper, a state dict, a tensor, a dict...

Rules ask `ctx.values.of(expr)`; the answer says what it holds and why (the evidence), and
where the name was bound, so messages can say something a user can check. Evidence, strongest
first (see "How is this an nn.Module? is decided" in RULES.md):

- project-class / library-constructor: bound to a call of a project class that subclasses
  nn.Module (project index) or of a known library constructor;
- wrapper: bound to `DDP(...)` / `nn.DataParallel(...)` / `torch.compile(...)`, or `x.module`;
- annotation: a parameter (or class attribute) annotated with a module type;
- name-heuristic: the name looks like a model and nothing says otherwise.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import libcst as cst

from ckptlint.analysis.calls import method_call, string_value
from ckptlint.analysis.library import UNWRAP_FUNCS, WRAPPER_NAMES, from_pretrained_kind, library_class_kind
from ckptlint.analysis.names import Binding, dotted

from ckptlint.analysis.kinds import (  # noqa: F401 (re-exported)
    DICT, LIST, LOADED, MODULE, NOT_A_MODEL, OTHER, STATE_DICT, TENSOR, UNKNOWN, WRAPPER,
)

DEFAULT_MODEL_NAMES = (
    "model", "net", "network", "generator", "discriminator", "backbone",
    "*_model", "*_net", "*_network",
)

# methods that return their receiver (or the same kind of thing)
_SAME_VALUE = frozenset([
    "to", "cuda", "cpu", "eval", "train", "half", "float", "double", "bfloat16",
    "requires_grad_", "share_memory", "to_empty",
])


@dataclass(frozen=True)
class Value:
    kind: str = UNKNOWN
    wrapper: Optional[str] = None  # dp | ddp | fsdp | compile, for kind == WRAPPER
    evidence: Optional[str] = None  # project-class | library-constructor | wrapper | annotation | name-heuristic
    line: Optional[int] = None  # where the name was bound
    detail: str = ""  # e.g. "a call of `Net`"; for messages
    elements: Tuple = ()  # dict/list literals: ((element value expr, Value), ...)
    cls: Optional[str] = None  # an instance of this project class (its attributes can be looked up)

    @property
    def is_module(self) -> bool:
        return self.kind == MODULE

    def describe(self, what: str) -> str:
        """"`model` is an nn.Module (a call of `Net`, bound at line 3)"."""
        where = f", bound at line {self.line}" if self.line else ""
        if self.kind == WRAPPER:
            return f"{what} is a {WRAPPER_NAMES.get(self.wrapper, 'wrapper')} wrapper ({self.detail}{where})"
        if self.evidence == "name-heuristic":
            return f"{what} looks like a model by its name only"
        return f"{what} is an nn.Module ({self.detail}{where})"


UNKNOWN_VALUE = Value()


def _is_none(e) -> bool:
    return isinstance(e, cst.Name) and e.value == "None"


def _with_line(v: Value, line: Optional[int]) -> Value:
    if v.line is not None or line is None:
        return v
    return Value(v.kind, v.wrapper, v.evidence, line, v.detail, v.elements, v.cls)


class Values:
    def __init__(self, ctx):
        self.ctx = ctx
        self.names = ctx.names
        self._memo: Dict[cst.CSTNode, Value] = {}
        self._active: set = set()
        self._attrs = None
        names = getattr(ctx.settings, "model_names", None)
        self.patterns: Tuple[str, ...] = () if names is False else tuple(names or DEFAULT_MODEL_NAMES)

    # --- entry point ---------------------------------------------------------------------------
    def of(self, expr: cst.BaseExpression) -> Value:
        if expr in self._memo:
            return self._memo[expr]
        if expr in self._active or len(self._active) > 40:
            return UNKNOWN_VALUE  # a cycle (`a = b; b = a`) or too deep
        self._active.add(expr)
        try:
            v = self._eval(expr)
        finally:
            self._active.discard(expr)
        self._memo[expr] = v
        return v

    def looks_like_model(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    # --- evaluation -----------------------------------------------------------------------------
    def _eval(self, e) -> Value:
        if isinstance(e, cst.Name):
            if e.value in ("None", "True", "False"):
                return Value(OTHER)
            return self._name(e)
        if isinstance(e, cst.Attribute):
            return self._attribute(e)
        if isinstance(e, cst.Call):
            return self._call(e)
        if isinstance(e, (cst.Dict, cst.DictComp)):
            elements = ()
            if isinstance(e, cst.Dict):
                elements = tuple(
                    (el.value, self.of(el.value)) for el in e.elements if isinstance(el, cst.DictElement)
                )
            return Value(DICT, elements=elements)
        if isinstance(e, (cst.List, cst.Tuple)):
            elements = tuple((el.value, self.of(el.value)) for el in e.elements if isinstance(el, cst.Element))
            return Value(LIST, elements=elements)
        if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.Set)):
            return Value(LIST)
        if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
                          cst.ConcatenatedString, cst.FormattedString, cst.Comparison)):
            return Value(OTHER)
        if isinstance(e, cst.IfExp):
            # `ModelEMA(model) if main_process else None`: None is the "not here" case
            if _is_none(e.orelse):
                return self.of(e.body)
            if _is_none(e.body):
                return self.of(e.orelse)
            return self._either(self.of(e.body), self.of(e.orelse))
        return UNKNOWN_VALUE

    def _either(self, a: Value, b: Value) -> Value:
        """`x.module if hasattr(x, "module") else x` unwraps; mixed kinds are unknown."""
        kinds = {a.kind, b.kind}
        if kinds & NOT_A_MODEL:
            return a if a.kind == b.kind else Value(OTHER)
        if a.kind == b.kind == WRAPPER:
            return a
        if MODULE in kinds:
            strong = [v for v in (a, b) if v.kind == MODULE and v.evidence != "name-heuristic"]
            return strong[0] if strong else (a if a.kind == MODULE else b)
        return UNKNOWN_VALUE

    # --- names ------------------------------------------------------------------------------------
    def bindings(self, name: cst.Name):
        """(bindings the use may refer to, owning scope). A binding whose right-hand side holds
        the use itself (`model = DDP(model)`) is the previous one's business."""
        names = self.names
        scope = names.scope(name)
        owner, same = names.resolving_scope(name.value, scope)
        if owner is None:
            return [], None
        binds = owner.bindings[name.value]
        use = names.seq.get(name)
        if same and use is not None:
            before = [b for b in binds if b.seq < use and not self._inside(name, b)]
            if not before and owner.kind == "comprehension":
                return list(binds), owner  # `{k[7:]: v for k, v in ...}`: the key comes first
            return (before[-1:] if before else []), owner
        return list(binds), owner

    def uses(self, target: cst.Name) -> List[cst.Name]:
        """The reads of the name `target` binds (`blob` in `f(blob)` after `blob = ...`)."""
        out = []
        for use in self.ctx.names_spelled(target.value):
            if use is target or isinstance(self.names.parent(use), (cst.AssignTarget, cst.Param)):
                continue
            binds, _ = self.bindings(use)
            if any(b.node is target for b in binds):
                out.append(use)
        return out

    def conditional(self, name: cst.Name) -> bool:
        """Is the binding a use of `name` sees made under a condition the use is not under
        (`if distributed: model = DDP(model)` ... `model.state_dict()`)? Then the name may
        still hold what it held before."""
        binds, _ = self.bindings(name)
        if len(binds) != 1:
            return len(binds) > 1
        use_ancestors = set()
        p = self.names.parent(name)
        while p is not None:
            use_ancestors.add(id(p))
            p = self.names.parent(p)
        p = self.names.parent(binds[0].node)
        while p is not None and not isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Module)):
            if isinstance(p, (cst.If, cst.For, cst.While, cst.Try, cst.IfExp)) and id(p) not in use_ancestors:
                return True
            p = self.names.parent(p)
        return False

    def _inside(self, node, b: Binding) -> bool:
        if b.value is None:
            return False
        p = node
        for _ in range(64):
            p = self.names.parent(p)
            if p is None or isinstance(p, cst.BaseStatement):
                return False
            if p is b.value:
                return True
        return False

    def _name(self, e: cst.Name) -> Value:
        binds, owner = self.bindings(e)
        values = [self._binding(b) for b in binds]
        known = [v for v in values if v.kind != UNKNOWN]
        if values and len(known) == len(values) and all(v.kind == known[0].kind for v in known):
            return known[0]
        if known and any(v.kind in NOT_A_MODEL for v in known):
            return Value(OTHER)
        if values and not known and values[0].cls and all(v.cls == values[0].cls for v in values):
            return values[0]  # an instance of one project class, of unknown kind
        if self.looks_like_model(e.value) and not self._said_otherwise(e.value, owner):
            line = self._line(binds[-1].node) if binds else None
            return Value(MODULE, evidence="name-heuristic", line=line, detail=f"named `{e.value}`")
        return UNKNOWN_VALUE

    def _said_otherwise(self, name: str, owner) -> bool:
        if owner is None:
            return False
        for b in owner.bindings.get(name, ()):
            v = self._binding(b)
            if v.kind in NOT_A_MODEL or (b.kind in ("def", "class", "import")):
                return True
        return False

    def _line(self, node) -> Optional[int]:
        try:
            return self.ctx.start(node).row
        except Exception:  # pragma: no cover - node without a position
            return None

    def _binding(self, b: Binding) -> Value:
        if b.kind == "assign" and b.value is not None:
            return _with_line(self.of(b.value), self._line(b.node))
        if b.kind == "param" and isinstance(b.node, cst.Param) and b.node.annotation is not None:
            v = self._annotation(b.node.annotation.annotation)
            return _with_line(v, self._line(b.node))
        return UNKNOWN_VALUE

    def _annotation(self, ann) -> Value:
        if isinstance(ann, cst.Subscript) and self.ctx.qualified_name(ann.value) in ("typing.Optional",):
            if len(ann.slice) == 1 and isinstance(ann.slice[0].slice, cst.Index):
                ann = ann.slice[0].slice.value
        if isinstance(ann, cst.BinaryOperation) and isinstance(ann.operator, cst.BitOr):
            if isinstance(ann.right, cst.Name) and ann.right.value == "None":
                ann = ann.left
        kind, label = self.class_kind(ann)
        if kind == MODULE:
            return Value(MODULE, evidence="annotation", detail=f"annotated `{label}`")
        if kind and kind.startswith("wrapper:"):
            w = kind.split(":", 1)[1]
            return Value(WRAPPER, wrapper=w, evidence="annotation", detail=f"annotated `{label}`")
        # `world: World`, a project class: not a module, and its attributes can be looked up
        cls = self._project_class(ann) if isinstance(ann, (cst.Name, cst.Attribute)) else None
        if cls is None:
            return UNKNOWN_VALUE
        return Value(OTHER, detail=f"annotated `{label}`", cls=cls) if kind == "other" else Value(cls=cls)

    # --- classes ----------------------------------------------------------------------------------
    def class_kind(self, func) -> Tuple[Optional[str], str]:
        """(kind of what calling `func` makes, how to name it) through the library table and
        the project index."""
        label = dotted(func) or self.ctx.code(func)
        project = self.ctx.project
        if isinstance(func, cst.Name):
            binds, owner = self.bindings(func)
            if binds and all(b.kind == "class" for b in binds) and self.names.scope(binds[-1].node).kind == "module":
                return project.class_kind(f"{project.module}.{func.value}"), label
            if not binds and owner is None and self.names.module_scope.star_imports:
                # `from .models import *`: the index follows the file's star imports
                return project.class_kind(f"{project.module}.{func.value}"), label
        qname = self.ctx.qualified_name(func)
        if qname is None:
            return None, label
        return project.class_kind(qname), label

    # --- attributes --------------------------------------------------------------------------------
    def _attribute(self, e: cst.Attribute) -> Value:
        attr = e.attr.value
        if attr in ("module", "_orig_mod", "_fsdp_wrapped_module"):
            inner = self.of(e.value)
            if inner.kind in NOT_A_MODEL:
                return UNKNOWN_VALUE
            if inner.kind == WRAPPER:
                return Value(MODULE, evidence="wrapper", line=inner.line,
                             detail=f"`.{attr}` of a {WRAPPER_NAMES.get(inner.wrapper, 'wrapper')}")
            if isinstance(e.value, cst.Name) and e.value.value == "self":
                return UNKNOWN_VALUE  # a class's own `self.module` attribute: unknown
            return Value(MODULE, evidence="wrapper", detail=f"the `.{attr}` of a wrapper")
        if isinstance(e.value, cst.Name) and self._is_self(e.value):
            return self._self_attribute(e)
        return self._instance_attribute(e)

    def _instance_attribute(self, e: cst.Attribute) -> Value:
        """`ema.ema` where `ema = ModelEMA(model)`: what the project class sets on `self.ema`
        (`deepcopy(de_parallel(model)).eval()` is a module)."""
        owner = self.of(e.value)
        if owner.cls is None:
            return UNKNOWN_VALUE
        found = self.ctx.project.attr_kind(owner.cls, e.attr.value)
        if found is None:
            return UNKNOWN_VALUE
        where = f" in {found[1]}" if found[1] != self.ctx.project.rel_path else ""
        label = owner.cls.rsplit(".", 1)[-1]
        how = "annotated with an nn.Module class" if found[2] == "annotated" else "set to an nn.Module"
        return Value(MODULE, evidence="project-class", line=owner.line,
                     detail=f"`{label}.{e.attr.value}`, {how}{where}")

    def _is_self(self, name: cst.Name) -> bool:
        binds, _ = self.bindings(name)
        if len(binds) != 1 or binds[0].kind != "param":
            return False
        fn = self._enclosing_method(name)
        if fn is None:
            return False
        params = list(fn.params.posonly_params) + list(fn.params.params)
        return bool(params) and params[0] is binds[0].node

    def _enclosing_method(self, node) -> Optional[cst.FunctionDef]:
        scope = self.names.scope(node)
        while scope is not None and scope.kind != "function":
            scope = scope.parent
        if scope is None:
            return None
        fn = scope.node
        outer = scope.parent
        return fn if outer is not None and outer.kind == "class" else None

    def _class_attrs(self):
        """{(class node, attr): [(value expr or annotation marker, line)]} for `self.x = ...`
        in methods and `x: T` in class bodies."""
        if self._attrs is not None:
            return self._attrs
        attrs: Dict[Tuple[cst.CSTNode, str], List] = {}
        for node in self.ctx.nodes(cst.Assign, cst.AnnAssign):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            for t in targets:
                if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name):
                    fn = self._enclosing_method(t)
                    if fn is None or not self._is_self(t.value):
                        continue
                    cls = self.names.scope(fn).node
                    if node.value is not None:
                        attrs.setdefault((cls, t.attr.value), []).append(("value", node.value, t))
                    elif isinstance(node, cst.AnnAssign):
                        attrs.setdefault((cls, t.attr.value), []).append(("ann", node.annotation.annotation, t))
                elif isinstance(t, cst.Name) and isinstance(node, cst.AnnAssign):
                    scope = self.names.scope(node)
                    if scope.kind == "class":
                        attrs.setdefault((scope.node, t.value), []).append(("ann", node.annotation.annotation, t))
        self._attrs = attrs
        return attrs

    def _self_attribute(self, e: cst.Attribute) -> Value:
        fn = self._enclosing_method(e)
        cls = self.names.scope(fn).node
        entries = self._class_attrs().get((cls, e.attr.value), [])
        values = []
        for what, node, target in entries:
            if what == "value":
                if isinstance(node, cst.Name) and node.value == "None":
                    continue
                values.append(_with_line(self.of(node), self._line(target)))
            else:
                values.append(_with_line(self._annotation(node), self._line(target)))
        known = [v for v in values if v.kind != UNKNOWN]
        if values and len(known) == len(values) and all(v.kind == known[0].kind for v in known):
            return known[0]
        if any(v.kind in NOT_A_MODEL for v in known):
            return Value(OTHER)
        if self.looks_like_model(e.attr.value) and not values:
            return Value(MODULE, evidence="name-heuristic", detail=f"named `{e.attr.value}`")
        if self.looks_like_model(e.attr.value) and values and not known:
            return Value(MODULE, evidence="name-heuristic", detail=f"named `{e.attr.value}`")
        return UNKNOWN_VALUE

    # --- calls ------------------------------------------------------------------------------------------
    def _call(self, e: cst.Call) -> Value:
        receiver, meth = method_call(e)
        fname = meth if meth is not None else (e.func.value if isinstance(e.func, cst.Name) else None)
        if fname is not None and fname.endswith("state_dict") and fname != "load_state_dict":
            return Value(STATE_DICT)
        if receiver is not None and meth in _SAME_VALUE:
            return self.of(receiver)
        if fname in UNWRAP_FUNCS and e.args:
            inner = self.of(e.args[0].value)
            if inner.kind in NOT_A_MODEL:
                return UNKNOWN_VALUE
            strong = inner.kind == MODULE and inner.evidence != "name-heuristic"
            return Value(MODULE, evidence=inner.evidence if strong else "wrapper",
                         line=inner.line, detail=f"unwrapped by `{fname}`")
        qname = self.ctx.call_qname(e)
        if qname == "builtins.getattr" and len(e.args) >= 2 and string_value(e.args[1].value) == "module":
            inner = self.of(e.args[0].value)
            if inner.kind in NOT_A_MODEL:
                return UNKNOWN_VALUE
            return Value(MODULE, evidence=inner.evidence if inner.kind == MODULE else "wrapper",
                         line=inner.line, detail="unwrapped by `getattr(..., \"module\", ...)`")
        if qname == "copy.deepcopy" and e.args:
            return self.of(e.args[0].value)
        if qname in ("builtins.dict", "collections.OrderedDict"):
            elements = tuple((a.value, self.of(a.value)) for a in e.args if a.keyword is not None)
            return Value(DICT, elements=elements)
        if qname in ("builtins.list", "builtins.tuple"):
            return Value(LIST)
        if qname in ("builtins.int", "builtins.float", "builtins.str", "builtins.len", "builtins.bool"):
            return Value(OTHER)
        if qname in ("torch.load", "torch.hub.load_state_dict_from_url", "safetensors.torch.load_file"):
            return Value(LOADED)
        if meth == "from_pretrained" and from_pretrained_kind(self.ctx.qualified_name(receiver)) == MODULE:
            return Value(MODULE, evidence="library-constructor", detail=f"`{dotted(e.func)}`")
        kind, label = self.class_kind(e.func)
        if kind == MODULE:
            qname = self.ctx.qualified_name(e.func)
            if library_class_kind(qname) == MODULE:
                return Value(MODULE, evidence="library-constructor", detail=f"a call of `{label}`")
            where = self.ctx.project.defined_in(qname) if qname else None
            where = f", an nn.Module subclass from {where}" if where and where != self.ctx.project.rel_path else ""
            return Value(MODULE, evidence="project-class", detail=f"a call of `{label}`{where}")
        if kind and kind.startswith("wrapper:"):
            return Value(WRAPPER, wrapper=kind.split(":", 1)[1], evidence="wrapper", detail=f"`{label}(...)`")
        if kind == "tensor":
            return Value(TENSOR)
        if kind == "other":
            return Value(OTHER, detail=f"a call of `{label}`", cls=self._project_class(e.func))
        if receiver is not None and meth in ("detach", "clone", "numpy", "item", "tolist", "contiguous"):
            return Value(TENSOR)
        if kind is None:
            cls = self._project_class(e.func)
            return Value(cls=cls) if cls else UNKNOWN_VALUE
        return UNKNOWN_VALUE

    def _project_class(self, func) -> Optional[str]:
        """The qualified name of a project class `func` names, else None."""
        qname = self.ctx.qualified_name(func)
        if isinstance(func, cst.Name):
            binds, _ = self.bindings(func)
            if binds and all(b.kind == "class" for b in binds):
                qname = f"{self.ctx.project.module}.{func.value}"
        if qname is None or self.ctx.project.defined_in(qname) is None:
            return None
        return qname

