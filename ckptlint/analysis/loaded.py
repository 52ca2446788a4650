"""What the code does with what `torch.load` returns, and whether that shows the file holds
more than tensors and containers: a pickled module (`ckpt["model"].fuse()`, `net.eval()`,
`for p in ckpt["model"].parameters()`) or some other pickled object (`ckpt["args"].lr`,
`ckpt["model"].yaml`, `vars(ckpt["opt"])`). `weights_only=True` refuses such a file, so a
rule that would add it asks here first.

The loaded value is followed through subscripts (`ckpt["model"]`), `.get(...)`, methods a
tensor and a module share (`.to()`, `.float()`, `.half()`), `a or b`, and names bound to any
of these in the same scope (also `self.x = torch.load(...)` read in the same function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import libcst as cst

from ckptlint.analysis.calls import string_value

# Methods only an nn.Module has (not a tensor, a dict, a list or a number).
MODULE_METHODS = frozenset([
    "eval", "train", "fuse", "parameters", "named_parameters", "buffers", "named_buffers",
    "modules", "named_modules", "children", "named_children", "state_dict", "load_state_dict",
    "forward", "apply", "zero_grad", "register_buffer", "register_parameter",
    "register_forward_hook", "register_forward_pre_hook", "add_module", "get_submodule",
])
# Methods of both tensors and modules: the value stays what it was.
_SHARED = frozenset(["to", "cuda", "cpu", "float", "half", "double", "bfloat16", "type"])
# Plain attributes (not methods) a tensor or an ndarray has: reading one shows nothing.
_DATA_ATTRS = frozenset([
    "shape", "dtype", "device", "T", "mT", "H", "mH", "data", "grad", "ndim", "is_cuda",
    "requires_grad", "real", "imag", "layout", "names", "itemsize", "nbytes", "is_sparse",
    "is_quantized", "is_leaf", "grad_fn", "is_meta", "size", "flat", "strides",
])
_ENTRY_METHODS = frozenset(["get", "pop", "setdefault"])


@dataclass(frozen=True)
class Held:
    """What a use shows the loaded file holds: "module" or "object" (another pickled class)."""

    kind: str
    use: cst.CSTNode  # the expression that shows it
    entry: Optional[str] = None  # the dict key it is found under (`"model"`), if any

    def describe(self, ctx) -> str:
        what = "a module" if self.kind == "module" else "a pickled object, not a tensor"
        where = f"its `{self.entry}` entry" if self.entry else "what it loads"
        return f"{where} is used as {what} (`{ctx.code(self.use)}`, line {ctx.start(self.use).row})"


def what_it_holds(ctx, load: cst.Call) -> Optional[Held]:
    """The first use of the value `load` returns that shows a module, else the first that
    shows another object."""
    found = list(_uses(ctx, load, None, 0))
    modules = [h for h in found if h.kind == "module"]
    return (modules or found or [None])[0]


def load_call_of(ctx, expr) -> Optional[cst.Call]:
    """The `torch.load(...)` call a name was bound to (`ckpt = torch.load(p)`), or `expr`
    itself when it is one."""
    if isinstance(expr, cst.Name):
        binds, _ = ctx.values.bindings(expr)
        if len(binds) != 1 or binds[0].kind != "assign":
            return None
        expr = binds[0].value
    if isinstance(expr, cst.Call) and ctx.call_qname(expr) == "torch.load":
        return expr
    return None


def _uses(ctx, expr, entry: Optional[str], depth: int) -> Iterator[Held]:
    if depth > 12:
        return
    parent = ctx.parent(expr)
    if isinstance(parent, cst.Subscript) and parent.value is expr:
        yield from _uses(ctx, parent, entry or _key(parent), depth + 1)
    elif isinstance(parent, cst.Attribute) and parent.value is expr:
        call = ctx.parent(parent)
        attr = parent.attr.value
        if isinstance(call, cst.Call) and call.func is parent:
            if attr in MODULE_METHODS:
                yield Held("module", call, entry)
            elif attr in _SHARED:
                yield from _uses(ctx, call, entry, depth + 1)
            elif attr in _ENTRY_METHODS and call.args:
                yield from _uses(ctx, call, entry or string_value(call.args[0].value) or "?", depth + 1)
        elif attr not in _DATA_ATTRS:
            yield Held("object", parent, entry)
    elif isinstance(parent, cst.Call) and parent.func is expr:
        yield Held("module", parent, entry)
    elif isinstance(parent, cst.Arg) and _reads_attributes(ctx, parent):
        yield Held("object", ctx.parent(parent), entry)
    elif isinstance(parent, cst.BooleanOperation):
        yield from _uses(ctx, parent, entry, depth + 1)
    elif isinstance(parent, cst.Assign) and parent.value is expr and len(parent.targets) == 1:
        for use in later_uses(ctx, parent.targets[0].target, parent):
            yield from _uses(ctx, use, entry, depth + 1)


def _key(sub: cst.Subscript) -> str:
    if len(sub.slice) == 1 and isinstance(sub.slice[0].slice, cst.Index):
        return string_value(sub.slice[0].slice.value) or "?"
    return "?"


def _reads_attributes(ctx, arg: cst.Arg) -> bool:
    """`vars(x)` or `getattr(x, "lr")`: only objects have attributes to read."""
    call = ctx.parent(arg)
    return (isinstance(call, cst.Call) and call.args and call.args[0] is arg
            and ctx.call_qname(call) in ("builtins.vars", "builtins.getattr"))


def later_uses(ctx, target, assign: cst.Assign) -> Iterator[cst.CSTNode]:
    """(Also for other rules.) Reads of what `target = ...` bound: names resolving to this binding; for `self.x`,
    reads of `self.x` later in the same function."""
    if isinstance(target, cst.Name):
        for use in ctx.names_spelled(target.value):
            if use is target or isinstance(ctx.parent(use), (cst.AssignTarget, cst.Param)):
                continue
            binds, _ = ctx.values.bindings(use)
            if any(b.node is target for b in binds):
                yield use
    elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
        fn = _function_of(ctx, assign)
        if fn is None:
            return
        after = ctx.start(assign)
        for node in ctx.nodes(cst.Attribute):
            if (node is not target and _same_attr(node, target) and _function_of(ctx, node) is fn
                    and _after(ctx.start(node), after) and not isinstance(ctx.parent(node), cst.AssignTarget)):
                yield node


def _same_attr(a: cst.Attribute, b: cst.Attribute) -> bool:
    return (isinstance(a.value, cst.Name) and a.value.value == b.value.value
            and a.attr.value == b.attr.value)


def _after(a, b) -> bool:
    return (a.row, a.column) > (b.row, b.column)


def _function_of(ctx, node) -> Optional[cst.FunctionDef]:
    p = ctx.parent(node)
    while p is not None and not isinstance(p, cst.FunctionDef):
        p = ctx.parent(p)
    return p
