"""Where a statement sits: in a loop, under a rank-0 guard (CKPT050/052), on some ranks only
(CKPT014/053)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import libcst as cst

from ckptlint.analysis.calls import is_literal, string_value

RANK_TEST = re.compile(
    r"rank|main_process|is_main|master|is_primary|process_index|is_world_process_zero",
    re.IGNORECASE,
)


def enclosing_function(ctx, node) -> Optional[cst.FunctionDef]:
    p = ctx.parent(node)
    while p is not None and not isinstance(p, cst.FunctionDef):
        p = ctx.parent(p)
    return p


def rank_guarded(ctx, node) -> bool:
    """Under `if rank == 0:`-like tests, in a function decorated `@rank_zero_only`, after an
    early `if rank != 0: return`, or in a function whose name says it (`save_on_master`)."""
    p, child = ctx.parent(node), node
    while p is not None:
        if isinstance(p, (cst.If, cst.IfExp, cst.While)) and child is not p.test and RANK_TEST.search(ctx.code(p.test)):
            return True
        if isinstance(p, cst.FunctionDef):
            if RANK_TEST.search(p.name.value) or any(
                RANK_TEST.search(ctx.code(d.decorator)) or "rank_zero" in ctx.code(d.decorator) for d in p.decorators
            ):
                return True
            if _early_return(ctx, p, node):
                return True
        child, p = p, ctx.parent(p)
    return False


def _early_return(ctx, fn: cst.FunctionDef, node) -> bool:
    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.If) and RANK_TEST.search(ctx.code(stmt.test)):
            inner = stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else stmt.body.body
            for s in inner:
                small = s.body if isinstance(s, cst.SimpleStatementLine) else ()
                if any(isinstance(x, cst.Return) for x in small):
                    return True
    return False


# A name that counts training progress: `epoch`, `global_step`, `num_epochs`, `max_iter`,
# `epoch_idx` (whole names: `epoch_and_values` or `nbest_epochs` are lists, not counters).
_COUNTER = re.compile(
    r"^(?:[a-z0-9]+_)*(?:epoch|step|iter|iteration|it|itr)s?(?:_(?:idx|id|i|num|no|count))?$", re.IGNORECASE)
_TRAINING_BODY = re.compile(r"\.backward\(|optim\w*\.step\(|scheduler\.step\(|train_one_epoch|train_step")


def _names_in(node):
    if isinstance(node, cst.Name):
        yield node.value
    elif isinstance(node, cst.Attribute):
        yield node.attr.value
    for child in node.children:
        yield from _names_in(child)


def _counts_progress(ctx, loop) -> bool:
    """The loop's header counts epochs/steps: `for epoch in range(...)`, `for it in
    range(max_iter)`, `while global_step < total_steps`; a loop over a list does not count
    through the list's name (`for e in nbest_epochs`)."""
    if isinstance(loop, cst.While):
        return any(_COUNTER.match(n) for n in _names_in(loop.test))
    if any(_COUNTER.match(n) for n in _names_in(loop.target)):
        return True
    return isinstance(loop.iter, cst.Call) and any(
        _COUNTER.match(n) for a in loop.iter.args for n in _names_in(a.value))


def in_training_loop(ctx, node) -> bool:
    """Inside a loop that looks like training: its header counts epochs/steps/iterations, or
    its body calls `.backward()` / `optimizer.step()` (loops over files, adapters, retries,
    checkpoints to average are not training loops)."""
    p = ctx.parent(node)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
        if isinstance(p, (cst.For, cst.While)) and (_counts_progress(ctx, p) or _TRAINING_BODY.search(ctx.code(p.body))):
            return True
        p = ctx.parent(p)
    return False


def writes_to_buffer(ctx, f) -> bool:
    """`torch.save(obj, buf)` into an in-memory `io.BytesIO()` writes no file."""
    if isinstance(f, cst.Name):
        binds, _ = ctx.values.bindings(f)
        for b in binds:
            if isinstance(b.value, cst.Call) and ctx.call_qname(b.value) in ("io.BytesIO", "_io.BytesIO"):
                return True
    return isinstance(f, cst.Call) and ctx.call_qname(f) in ("io.BytesIO", "_io.BytesIO")


def reads_buffer(ctx, call: cst.Call) -> bool:
    """`torch.load(io.BytesIO(...))`, directly or through a name bound to one: bytes passed
    between processes of one job, not a file from another machine."""
    if not call.args or call.args[0].keyword is not None:
        return False
    expr = call.args[0].value
    if isinstance(expr, cst.Name):
        binding = ctx.binding_of(expr)
        expr = binding.value if binding is not None and binding.kind == "assign" else None
    return isinstance(expr, cst.Call) and ctx.call_qname(expr) in ("io.BytesIO", "_io.BytesIO")


def round_trip(ctx, load: cst.Call) -> bool:
    """A load of an in-memory buffer in a function that also `torch.save`s into one: the
    function moves its own objects between processes (`broadcast(obj)` of any picklable),
    not a checkpoint from elsewhere."""
    if not reads_buffer(ctx, load):
        return False
    fn = enclosing_function(ctx, load)
    for save in ctx.calls_to("torch.save"):
        f = save.args[1].value if len(save.args) > 1 and save.args[1].keyword is None else None
        if f is not None and writes_to_buffer(ctx, f) and enclosing_function(ctx, save) is fn:
            return True
    return False


def within(ctx, node, ancestor) -> bool:
    """Is `node` inside `ancestor`, in the same function?"""
    p = node
    while p is not None:
        if p is ancestor:
            return True
        if isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and p is not node:
            return False
        p = ctx.parent(p)
    return False


def handler_of(ctx, node):
    """(the `except` clause holding node, its `try`) in the same function, else (None, None)."""
    p = ctx.parent(node)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Module)):
        if isinstance(p, cst.ExceptHandler) or type(p).__name__ == "ExceptStarHandler":
            return p, ctx.parent(p)
        p = ctx.parent(p)
    return None, None


def old_torch_fallback(ctx, load: cst.Call):
    """The line of the `torch.load(..., weights_only=...)` whose `except TypeError` this load
    is in: the retry for a torch that has no `weights_only` keyword. Else None."""
    from ckptlint.analysis.calls import find_arg

    handler, try_node = handler_of(ctx, load)
    if handler is None or handler.type is None or "TypeError" not in ctx.code(handler.type):
        return None
    for other in ctx.calls_to("torch.load"):
        if other is not load and find_arg(other, "weights_only") is not None and any(
                within(ctx, other, stmt) for stmt in try_node.body.body):
            return ctx.start(other).row
    return None


def _callee_name(call: cst.Call):
    if isinstance(call.func, cst.Name):
        return call.func.value
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return None


def reachable_functions(ctx, starts):
    """Functions of this file reachable by name from the functions holding `starts` (calls);
    None when a start is at module level (everything may run after it)."""
    by_name = {}
    for fn in ctx.nodes(cst.FunctionDef):
        by_name.setdefault(fn.name.value, []).append(fn)
    calls_in = {}
    for call in ctx.calls:
        fn = enclosing_function(ctx, call)
        name = _callee_name(call)
        if fn is not None and name in by_name:
            calls_in.setdefault(fn, []).append(name)
    todo = []
    for s in starts:
        fn = enclosing_function(ctx, s)
        if fn is None:
            return None
        todo.append(fn)
    seen = []
    while todo:
        fn = todo.pop()
        if any(fn is x for x in seen):
            continue
        seen.append(fn)
        for name in calls_in.get(fn, ()):
            todo.extend(by_name[name])
    return seen


def callers_guarded(ctx, fn) -> bool:
    """Every call of `fn` (by name, in this file) is under a rank test: `if rank == 0:
    self.save_model()` guards the save inside it."""
    sites = [c for c in ctx.calls if _callee_name(c) == fn.name.value and enclosing_function(ctx, c) is not fn]
    return bool(sites) and all(rank_guarded(ctx, c) for c in sites)


# --- rank splits: code that runs on some ranks only (CKPT014, CKPT053) ------------------------
# `rank_guarded` above says "maybe guarded" (a guard silences CKPT050). The functions below say
# "surely split", for rules that fire on a guard: `if local_rank != -1:` (is this run
# distributed?) or `if rank is not None:` run on every rank alike, `if rank == 0:` does not.

# `rank`, `local_rank`, `self._rank`, `dist.get_rank()`, `get_data_parallel_rank()`, `RANK`,
# `process_index`; not `model_on_rank` (a flag whose meaning the name does not give), nor the
# rank of a matrix or an adapter (`lora_rank`, `low_rank`)
_RANK_ID = re.compile(r"(?!(lora|low|matrix|max|min|adapter|svd)_)([a-z]*_)?rank(_?id)?|get_\w*rank|(local_)?process_index",
                      re.IGNORECASE)
_TENSOR_RANK = re.compile(r"\.shape\b|\.size\(\s*-?\d|\.dim\(|\.ndim\b|lora", re.IGNORECASE)
_ONE_RANK_FLAG = re.compile(
    r"(is_)?(local_|global_|world_)?(main_process|master_process|main_rank|master_rank|rank_?0|rank_?zero"
    r"|global_zero|process_zero|zero_rank)|is_(local_|global_)?(main|master|primary|chief|master_ordinal"
    r"|main_worker|master_worker|first_rank)",
    re.IGNORECASE,
)
_ONE_RANK_DECORATOR = re.compile(
    r"rank_?zero_only|rank_?0_only|master_only|main_process_only|main_only|on_main_process"
    r"|on_local_main_process|on_master|on_rank_?0|only_on_rank_?0",
    re.IGNORECASE,
)


def _leaf(ctx, e) -> Optional[str]:
    """The identifier an expression is named by: `args.local_rank` -> `local_rank`,
    `dist.get_rank()` -> `get_rank`, `int(os.environ["RANK"])` -> `RANK`."""
    if isinstance(e, cst.Name):
        return e.value
    if isinstance(e, cst.Attribute):
        return e.attr.value
    if isinstance(e, cst.Subscript) and len(e.slice) == 1 and isinstance(e.slice[0].slice, cst.Index):
        return string_value(e.slice[0].slice.value)
    if isinstance(e, cst.Call):
        q = ctx.call_qname(e)
        if q in ("builtins.int", "builtins.bool") and e.args:
            return _leaf(ctx, e.args[0].value)
        if q == "builtins.getattr" and len(e.args) >= 2:
            return string_value(e.args[1].value)
        if isinstance(e.func, cst.Attribute) and e.func.attr.value == "get" and e.args:
            named = string_value(e.args[0].value)  # os.environ.get("RANK")
            if named is not None:
                return named
        return _leaf(ctx, e.func)
    return None


def _is_rank(ctx, e) -> bool:
    leaf = _leaf(ctx, e)
    if isinstance(e, cst.Call) and e.args and _leaf(ctx, e.func) == "rank":
        return False  # `tf.rank(weight)`: the number of dimensions; `group.rank()` takes no argument
    if isinstance(e, cst.Attribute) and _leaf(ctx, e.value) == "shape":
        return False  # `x.shape.rank`
    return leaf is not None and bool(_RANK_ID.fullmatch(leaf))


def _int(e) -> Optional[int]:
    """The value of an integer literal (`0`, `-1`, `"0"`), else None."""
    if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
        inner = _int(e.expression)
        return -inner if inner is not None else None
    if isinstance(e, cst.Integer):
        return int(e.evaluated_value)
    text = string_value(e)
    if text is not None and text.lstrip("-").isdigit():
        return int(text)
    return None


def _splits(op, other, rank_on_left: bool) -> bool:
    """Is `rank <op> other` true on some ranks and false on others of one distributed run?
    (-1 and None mean "not distributed": comparing with them splits nothing.)"""
    if isinstance(op, (cst.Is, cst.IsNot)) or is_literal(other, "None"):
        return False
    k = _int(other)
    if isinstance(op, (cst.Equal, cst.NotEqual)):
        return k is None or k >= 0
    if isinstance(op, (cst.In, cst.NotIn)):
        if isinstance(other, (cst.List, cst.Tuple, cst.Set)):
            values = [_int(el.value) for el in other.elements]
            return any(v is not None and v >= 0 for v in values)
        leaf = _leaf(None, other) if isinstance(other, (cst.Name, cst.Attribute)) else None
        return bool(leaf) and leaf.lower().endswith("ranks")  # `rank in saving_ranks`, not `rank in state`
    if k is None:
        return False  # `rank < world_size`
    if not rank_on_left:  # `0 < rank` is `rank > 0`
        op = {cst.LessThan: cst.GreaterThan(), cst.GreaterThan: cst.LessThan(),
              cst.LessThanEqual: cst.GreaterThanEqual(), cst.GreaterThanEqual: cst.LessThanEqual()}.get(type(op), op)
    if isinstance(op, (cst.GreaterThan, cst.LessThanEqual)):
        return k >= 0
    if isinstance(op, (cst.GreaterThanEqual, cst.LessThan)):
        return k >= 1
    return False


def rank_split(ctx, test) -> bool:
    """Is `test` true on some ranks and false on others (`rank == 0`, `not is_main_process`,
    `accelerator.is_main_process`, `dist.get_rank() in (0, 1)`, `trainer.is_global_zero and x`)?"""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return rank_split(ctx, test.expression)
    if isinstance(test, cst.BooleanOperation):
        return rank_split(ctx, test.left) or rank_split(ctx, test.right)
    if isinstance(test, cst.Comparison):
        if _TENSOR_RANK.search(ctx.code(test)):
            return False  # `rank != w.shape[0]`, `value.dim() != rank`: the rank of a tensor
        left = test.left
        for c in test.comparisons:
            if _is_rank(ctx, left) and _splits(c.operator, c.comparator, True):
                return True
            if _is_rank(ctx, c.comparator) and _splits(c.operator, left, False):
                return True
            left = c.comparator
        return False
    leaf = _leaf(ctx, test)
    if leaf is not None and _ONE_RANK_FLAG.fullmatch(leaf):
        return True
    # `if rank:` / `if not dist.get_rank():`; not `if os.environ.get("RANK"):`, true on every
    # rank of a distributed run (it asks whether the variable is set)
    named = isinstance(test, (cst.Name, cst.Attribute)) or (
        isinstance(test, cst.Call) and isinstance(test.func, (cst.Name, cst.Attribute))
        and _RANK_ID.fullmatch(_leaf(ctx, test.func) or "")
    )
    return bool(named) and _is_rank(ctx, test)


@dataclass(frozen=True)
class RankGuard:
    """Why a statement runs on some ranks only: `text` for messages, `node` for its line, and
    the `if` whose other branch the other ranks take (None for decorators, early returns)."""

    text: str
    node: cst.CSTNode
    branch_if: Optional[cst.CSTNode] = None


def _leaves_early(ctx, stmt) -> bool:
    """`if not is_main_process: return` (or `continue`), with no `else`."""
    if not isinstance(stmt, cst.If) or stmt.orelse is not None or not rank_split(ctx, stmt.test):
        return False
    body = stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else (stmt.body,)
    for s in body:
        small = s.body if isinstance(s, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) else ()
        if any(isinstance(x, (cst.Return, cst.Continue)) for x in small):
            return True
    return False


def enclosing_class(ctx, fn) -> Optional[cst.ClassDef]:
    """The class `fn` is a method of (None for a function, a nested function, or None)."""
    p = ctx.parent(fn) if fn is not None else None
    while p is not None and not isinstance(p, (cst.ClassDef, cst.FunctionDef)):
        p = ctx.parent(p)
    return p if isinstance(p, cst.ClassDef) else None


def calls_of(ctx, fn: cst.FunctionDef):
    """Calls in this file that run `fn`: `fn(...)` where the name is bound to it, or
    `self.fn(...)` in a method of the same class."""
    cls = enclosing_class(ctx, fn)
    out = []
    for call in ctx.calls:
        f = call.func
        if cls is None and isinstance(f, cst.Name) and f.value == fn.name.value:
            b = ctx.binding_of(f)
            if b is not None and b.node is fn:
                out.append(call)
        elif (
            cls is not None and isinstance(f, cst.Attribute) and f.attr.value == fn.name.value
            and isinstance(f.value, cst.Name) and f.value.value in ("self", "cls")
        ):
            caller = enclosing_function(ctx, call)
            if caller is not None and caller is not fn and enclosing_class(ctx, caller) is cls:
                out.append(call)
    return out


def rank_guard(ctx, node, _depth: int = 0) -> Optional[RankGuard]:
    """The rank test under which `node` runs on some ranks only: an enclosing `if rank == 0:`
    (either branch), an earlier `if rank != 0: return` in the same function, a decorator such
    as `@rank_zero_only`, or a call of the enclosing function made under one of those (in
    this file, two calls deep). None when it runs on every rank as far as this file shows."""
    p, child = ctx.parent(node), node
    while p is not None and not isinstance(p, (cst.ClassDef, cst.Lambda)):
        if isinstance(p, (cst.If, cst.IfExp)) and child is not p.test and rank_split(ctx, p.test):
            head = "if" if isinstance(p, cst.If) else "... if"
            return RankGuard(f"under `{head} {ctx.code(p.test)}`", p.test, p)
        if isinstance(p, (cst.IndentedBlock, cst.Module)):
            for stmt in p.body:
                if stmt is child:
                    break
                if _leaves_early(ctx, stmt):
                    return RankGuard(f"after `if {ctx.code(stmt.test)}: return`", stmt.test)
        if isinstance(p, cst.FunctionDef):
            for d in p.decorators:
                leaf = _leaf(ctx, d.decorator)
                if leaf is not None and _ONE_RANK_DECORATOR.fullmatch(leaf):
                    return RankGuard(f"in `{p.name.value}`, decorated `@{ctx.code(d.decorator)}`", d.decorator)
            if _depth < 2:
                for call in calls_of(ctx, p):
                    outer = rank_guard(ctx, call, _depth + 1)
                    if outer is not None:
                        return RankGuard(f"in `{p.name.value}`, called {outer.text}", outer.node, outer.branch_if)
            return None
        child, p = p, ctx.parent(p)
    return None
