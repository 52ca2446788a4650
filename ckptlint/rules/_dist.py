"""What the torch.distributed checkpoint APIs do, for CKPT014 / CKPT015 / CKPT053: which calls
are collectives, and whether a module is sharded (FSDP, `fully_shard`, tensor parallel) when
its state dict is taken."""

from __future__ import annotations

import re
from typing import Optional, Tuple

import libcst as cst

from ckptlint.analysis.calls import find_arg, is_literal, method_call
from ckptlint.analysis.kinds import WRAPPER
from ckptlint.rules._guards import enclosing_class, enclosing_function

DCP = "torch.distributed.checkpoint"
FSDP1 = (
    "torch.distributed.fsdp.FullyShardedDataParallel",
    "torch.distributed.fsdp.fully_sharded_data_parallel.FullyShardedDataParallel",
)

# Collectives: every rank of the process group must make the call, or the ones that did wait
# for the others for ever. DCP's always are (`no_dist=True` makes them one-process calls); the
# distributed state-dict functions only for a sharded model: on a plain module (before
# `fully_shard`, to broadcast rank 0's weights) they gather nothing.
DCP_CALLS = tuple(f"{DCP}.{n}" for n in ("save", "load", "async_save", "save_state_dict", "load_state_dict"))
DSD_GETTERS = tuple(f"{DCP}.state_dict.{n}" for n in ("get_state_dict", "get_model_state_dict", "get_optimizer_state_dict"))
DSD_SETTERS = tuple(f"{DCP}.state_dict.{n}" for n in ("set_state_dict", "set_model_state_dict", "set_optimizer_state_dict"))
FSDP_OPTIM = tuple(
    f"{c}.{n}" for c in FSDP1
    for n in ("full_optim_state_dict", "optim_state_dict", "sharded_optim_state_dict", "scatter_full_optim_state_dict")
)
STATE_DICT_TYPE = tuple(f"{c}.state_dict_type" for c in FSDP1)
SET_STATE_DICT_TYPE = tuple(f"{c}.set_state_dict_type" for c in FSDP1)
# calls after which a module's parameters are DTensors (CANONICAL maps their other spellings)
SHARDERS = ("torch.distributed.fsdp.fully_shard", "torch.distributed.tensor.parallel.parallelize_module")

SHORT = {DCP: "dcp", f"{DCP}.state_dict": "", FSDP1[0]: "FSDP", FSDP1[1]: "FSDP"}

_RANK_PATH = re.compile(r"rank|process_index", re.IGNORECASE)


def per_rank_path(ctx, path, depth: int = 0) -> bool:
    """A path that names the rank (`f"model_rank{rank}.pt"`, also through a name bound to
    one): each rank writes a file of its own."""
    if _RANK_PATH.search(ctx.code(path)):
        return True
    if depth >= 3:
        return False
    todo = [path]
    while todo:  # the names the path is built from (`folder + name`)
        node = todo.pop()
        if isinstance(node, cst.Name):
            binds, _ = ctx.values.bindings(node)
            if len(binds) == 1 and binds[0].value is not None and per_rank_path(ctx, binds[0].value, depth + 1):
                return True
        else:
            todo.extend(node.children)
    return False


def short_name(qname: str) -> str:
    """`dcp.save`, `get_model_state_dict`, `FSDP.optim_state_dict`, for messages."""
    owner, _, name = qname.rpartition(".")
    prefix = SHORT.get(owner)
    if prefix is None:
        return qname
    return f"{prefix}.{name}" if prefix else name


def within(ctx, node, ancestor) -> bool:
    p = node
    while p is not None:
        if p is ancestor:
            return True
        p = ctx.parent(p)
    return False


def _before(ctx, a, b) -> bool:
    return ctx.order(a) < ctx.order(b)


def same_expr(ctx, a, b) -> bool:
    return "".join(ctx.code(a).split()) == "".join(ctx.code(b).split())


def _first_arg(call: cst.Call, name: str):
    arg = find_arg(call, name, (name,))
    return arg.value if isinstance(arg, cst.Arg) else None


def _type_name(expr) -> Optional[str]:
    """`StateDictType.SHARDED_STATE_DICT` -> "SHARDED"; None when not written out."""
    leaf = expr.attr.value if isinstance(expr, cst.Attribute) else expr.value if isinstance(expr, cst.Name) else ""
    for kind in ("FULL", "SHARDED", "LOCAL"):
        if leaf == f"{kind}_STATE_DICT":
            return kind
    return None


def fsdp_state_dict_type(ctx, module, at) -> Optional[Tuple[str, cst.Call]]:
    """("FULL" | "SHARDED" | "LOCAL" | "?", the call that sets it) for `module` at `at`: an enclosing
    `with FSDP.state_dict_type(module, ...)`, else an earlier `FSDP.set_state_dict_type(module,
    ...)` in the same function. None when neither is written out (FSDP's default is FULL)."""
    p = ctx.parent(at)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
        if isinstance(p, cst.With):
            for item in p.items:
                call = item.item
                if isinstance(call, cst.Call) and ctx.call_qname(call) in STATE_DICT_TYPE:
                    kind = _state_dict_type_of(call, module, ctx)
                    if kind is not None:
                        return kind, call
        p = ctx.parent(p)
    scope = enclosing_function(ctx, at)
    found = None
    for call in ctx.calls_to(*SET_STATE_DICT_TYPE):
        if enclosing_function(ctx, call) is scope and _before(ctx, call, at):
            kind = _state_dict_type_of(call, module, ctx)
            if kind is not None:
                found = kind, call
    return found


def _state_dict_type_of(call, module, ctx) -> Optional[str]:
    """The type `call` sets for `module`; "?" when it is not written out; None when the call is
    about another module."""
    target = find_arg(call, "module", ("module", "state_dict_type"))
    if not isinstance(target, cst.Arg) or not same_expr(ctx, target.value, module):
        return None
    kind = find_arg(call, "state_dict_type", ("module", "state_dict_type"))
    return (_type_name(kind.value) if isinstance(kind, cst.Arg) else None) or "?"


def is_fsdp1(ctx, module) -> bool:
    """`module` holds an `FSDP(...)` wrapper (value analysis)."""
    if not ctx.names_spelled("FullyShardedDataParallel"):
        return False  # no FSDP in this file: spare the value analysis
    value = ctx.values.of(module)
    return value.kind == WRAPPER and value.wrapper == "fsdp"


def dtensor_sharding(ctx, module, at) -> Optional[cst.Call]:
    """The `fully_shard(module)` / `parallelize_module(module, ...)` call that made `module`'s
    parameters DTensors before `at` (also `module = fully_shard(...)`): in the same function,
    through a name bound to its result, or, for `self.x`, in any method of the same class."""
    if isinstance(module, cst.Name):
        binds, _ = ctx.values.bindings(module)
        if len(binds) == 1 and isinstance(binds[0].value, cst.Call) and ctx.call_qname(binds[0].value) in SHARDERS:
            return binds[0].value
    scope = enclosing_function(ctx, at)
    cls = enclosing_class(ctx, scope) if ctx.code(module).startswith("self.") else None
    for call in ctx.calls_to(*SHARDERS):
        sharded = [call.args[0].value] if call.args and call.args[0].keyword is None else []
        parent = ctx.parent(call)
        if isinstance(parent, cst.Assign):  # `self.model = fully_shard(model)`
            sharded.extend(t.target for t in parent.targets)
        if not any(same_expr(ctx, s, module) for s in sharded):
            continue
        where = enclosing_function(ctx, call)
        if (where is scope and _before(ctx, call, at)) or (cls is not None and enclosing_class(ctx, where) is cls):
            return call
    return None


def sharding(ctx, module, at) -> Optional[str]:
    """How `module` is sharded at `at`, for messages; None when this file does not show it."""
    if is_fsdp1(ctx, module):
        return f"`{ctx.code(module)}` is an FSDP model"
    call = dtensor_sharding(ctx, module, at)
    if call is not None:
        return f"`{ctx.code(module)}` is sharded by `{ctx.code(call.func)}(...)` at line {ctx.start(call).row}"
    found = fsdp_state_dict_type(ctx, module, at)
    if found is not None:
        return f"`{ctx.code(module)}` is an FSDP model (`{ctx.code(found[1].func)}` at line {ctx.start(found[1]).row})"
    return None


def full_state_dict_option(ctx, call: cst.Call) -> Optional[bool]:
    """`options=StateDictOptions(full_state_dict=...)` of a get_*state_dict call: True / False
    when written out (also through a name bound to the options), None otherwise."""
    arg = find_arg(call, "options")
    if arg is None:
        return False  # no options: DCP's default, a sharded state dict for a sharded model
    if not isinstance(arg, cst.Arg):
        return None
    value = arg.value
    if isinstance(value, cst.Name):
        binds, _ = ctx.values.bindings(value)
        value = binds[0].value if len(binds) == 1 else None
    if not isinstance(value, cst.Call):
        return None
    full = find_arg(value, "full_state_dict")
    if full is None:
        return False
    if isinstance(full, cst.Arg) and (is_literal(full.value, "True") or is_literal(full.value, "False")):
        return is_literal(full.value, "True")
    return None


def state_dict_receiver(call: cst.Call) -> Optional[cst.BaseExpression]:
    """`X` of `X.state_dict()` / `X.load_state_dict(...)`."""
    receiver, meth = method_call(call)
    return receiver if meth in ("state_dict", "load_state_dict") else None


def model_arg(call: cst.Call) -> Optional[cst.BaseExpression]:
    """The module a get_*/set_* state-dict or FSDP optimizer call is about (its first argument)."""
    return _first_arg(call, "model")
