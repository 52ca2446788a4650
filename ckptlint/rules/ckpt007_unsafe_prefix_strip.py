from __future__ import annotations

import ast
import re
from typing import Optional

import libcst as cst

from ckptlint.analysis.calls import method_call, string_value
from ckptlint.analysis.kinds import LOADED, STATE_DICT
from ckptlint.rules._base import Invalid, Rule, Valid

PREFIXES = ("module.", "_orig_mod.", "_fsdp_wrapped_module.")
_LENGTHS = {len(p): p for p in PREFIXES}
_STATEY = re.compile(r"state|\bsd\b|_sd\b|ckpt|checkpoint|weights|pretrained", re.IGNORECASE)


def _fix_text(ctx, receiver, literal: str) -> Optional[str]:
    """`k.removeprefix(P)`, or on Python 3.8 targets the `startswith` conditional."""
    target = getattr(ctx.settings, "target_version", None)
    if target is None or target >= (3, 9):
        return f"{ctx.code(receiver)}.removeprefix({literal})"
    if not isinstance(receiver, (cst.Name, cst.Attribute)):
        return None  # evaluated twice in the conditional form: only for plain names
    k = ctx.code(receiver)
    return f"({k}[len({literal}):] if {k}.startswith({literal}) else {k})"


def _literal(ctx, expr):
    """A string literal, also through a name bound once to one (`prefix = "module."`)."""
    if isinstance(expr, cst.Name):
        binds, _ = ctx.values.bindings(expr)
        if len(binds) == 1 and binds[0].kind == "assign" and string_value(binds[0].value) is not None:
            return binds[0].value
        return None
    return expr if string_value(expr) is not None else None


def _slice_start(ctx, node: cst.Subscript):
    """(length, literal prefix or None) of `k[N:]` / `k[len("p"):]`, else None."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Slice):
        return None
    sl = node.slice[0].slice
    if sl.upper is not None or sl.step is not None or sl.lower is None:
        return None
    low = sl.lower
    if isinstance(low, cst.Integer):
        return int(low.value, 0), None  # 0x7 too
    if isinstance(low, cst.Call) and isinstance(low.func, cst.Name) and low.func.value == "len" and len(low.args) == 1:
        literal = _literal(ctx, low.args[0].value)
        if literal is not None:
            return len(string_value(literal)), literal
    return None


class UnsafePrefixStrip(Rule):
    code = "CKPT007"
    name = "unsafe-prefix-strip"
    summary = 'wrapper prefix stripped with `k.replace("module.", "")` or an unguarded `k[7:]`'
    fix_safety = "safe"
    fix_title = "Use `removeprefix`"
    fix_availability = "sometimes"
    # The prefix is a string literal of this file in every form the rule reports, except a
    # bare `k[7:]`: so the end of a quoted prefix, or a slice by one of their lengths. (Bare
    # `module.` is in most docstrings, `nn.Module.`; `[len(` in 92 transformers files.)
    triggers = ("module.'", 'module."', "_orig_mod.'", '_orig_mod."')
    trigger_patterns = (re.compile(r"\[\s*(?:%s)\s*:\s*:?\s*\]" % "|".join(map(str, sorted(_LENGTHS)))),)
    # then, on the stdlib AST: a `.replace`/`.lstrip` of a prefix literal, or a slice
    # `name[7:]` / `name[len(...):]` (triage.py)
    probe_types = (ast.Call, ast.Subscript)
    docs = """
    ## What it does
    Checks for state-dict keys stripped of a wrapper prefix (`module.`, `_orig_mod.`,
    `_fsdp_wrapped_module.`) with `k.replace("module.", "")` or `k.lstrip("module.")`, and
    for keys of a state dict sliced with `k[7:]` (or `k[len("module."):]`) in a loop or
    comprehension over the state dict without a `k.startswith(...)` guard.

    ## Why is this bad?
    `replace` removes the text wherever it occurs: `encoder.submodule.weight` becomes
    `encoder.subweight`, and those weights are then missing (or silently skipped with
    `strict=False`). `lstrip` removes *characters*, not a prefix: `model.layer` loses its
    leading `m`, `o`, `d`, ... An unguarded `k[7:]` chops the first seven characters off
    keys that never had the prefix (a checkpoint saved without `DataParallel`).

    ## Example
    ```python
    state = {k.replace("module.", ""): v for k, v in state.items()}
    ```

    ## Use instead
    ```python
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ```
    (On Python 3.8, `k[len("module."):] if k.startswith("module.") else k`; set
    `target-version = "py38"` to get that form from the fix.)

    ## Fix safety
    Safe: only keys that start with the prefix change, and only at the start. A `k[7:]`
    slice is fixed only when the code states which prefix it strips (`k[len("module."):]`);
    otherwise the finding has no fix, since the slice may strip something else.
    """
    valid = (
        Valid("sd = {k.removeprefix('module.'): v for k, v in sd.items()}\n"),
        Valid("sd = {(k[7:] if k.startswith('module.') else k): v for k, v in sd.items()}\n"),
        Valid("new = {}\nfor k, v in state_dict.items():\n    if k.startswith('module.'):\n        k = k[7:]\n    new[k] = v\n"),
        Valid("sd = {k[7:]: v for k, v in state_dict.items() if k.startswith('module.')}\n"),
        Valid("name = line[7:]\n"),
        Valid("for arg in sys.argv:\n    value = arg[7:]\n"),
        Valid("path = path.replace('module.', 'pkg.')\n"),
        Valid("text = k.replace('.', '/')\n"),
        Valid("sd = {k.replace('_orig_mod.', '') if k.startswith('_orig_mod.') else k: v for k, v in sd.items()}\n"),
        Valid("for k, v in state_dict.items():\n    if 'module.' in k:\n        k = k[7:]\n"),
        Valid(
            "if next(iter(state_dict.items()))[0].startswith('module'):\n"
            "    state_dict = {k[7:]: v for k, v in state_dict.items()}\n"
        ),
    )
    invalid = (
        Invalid(
            "sd = {k.replace('module.', ''): v for k, v in sd.items()}\n",
            "sd = {k.removeprefix('module.'): v for k, v in sd.items()}\n",
        ),
        Invalid(
            'new_key = key.replace("_orig_mod.", "")\n',
            'new_key = key.removeprefix("_orig_mod.")\n',
        ),
        Invalid(
            "sd = {k.replace('module.', '', 1): v for k, v in sd.items()}\n",
            "sd = {k.removeprefix('module.'): v for k, v in sd.items()}\n",
        ),
        Invalid(
            "name = k.lstrip('module.')\n",
            "name = k.removeprefix('module.')\n",
            message_contains="characters",
        ),
        Invalid(
            "sd = {k.replace('module.', ''): v for k, v in sd.items()}\n",
            "sd = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in sd.items()}\n",
            config={"target-version": "py38"},
        ),
        Invalid("sd = {k[7:]: v for k, v in state_dict.items()}\n", message_contains="`module.`"),
        Invalid(
            "new_state = OrderedDict()\nfor k, v in checkpoint['state_dict'].items():\n    name = k[7:]\n    new_state[name] = v\n"
        ),
        Invalid(
            "sd = {k[len('module.'):]: v for k, v in state_dict.items()}\n",
            "sd = {k.removeprefix('module.'): v for k, v in state_dict.items()}\n",
        ),
        Invalid("sd = {k[10:]: v for k, v in model_sd.items()}\n", message_contains="`_orig_mod.`"),
        Invalid(
            "PREFIX = 'module.'\nsd = {k[len(PREFIX):]: v for k, v in state_dict.items()}\n",
            "PREFIX = 'module.'\nsd = {k.removeprefix(PREFIX): v for k, v in state_dict.items()}\n",
        ),
    )

    @staticmethod
    def probe(node) -> bool:
        if isinstance(node, ast.Call):
            f, args = node.func, node.args
            return (isinstance(f, ast.Attribute) and f.attr in ("replace", "lstrip") and bool(args)
                    and isinstance(args[0], ast.Constant) and args[0].value in PREFIXES)
        sl = node.slice
        if not isinstance(node.value, ast.Name) or not isinstance(sl, ast.Slice):
            return False
        if sl.upper is not None or sl.step is not None:
            return False
        low = sl.lower
        if isinstance(low, ast.Constant):
            return type(low.value) is int and low.value in _LENGTHS
        return isinstance(low, ast.Call) and isinstance(low.func, ast.Name) and low.func.id == "len"

    def check(self, ctx):
        for call in ctx.calls:
            receiver, meth = method_call(call)
            if meth not in ("replace", "lstrip") or receiver is None or not call.args:
                continue
            literal = call.args[0].value
            prefix = string_value(literal)
            if prefix not in PREFIXES:
                continue
            if meth == "replace":
                if len(call.args) < 2 or string_value(call.args[1].value) != "":
                    continue
                if self._guarded(ctx, call, ctx.code(receiver), strict=True):
                    continue  # `k.replace(p, "") if k.startswith(p) else k`: meant as a prefix
                why = (f"`replace` removes `{prefix}` anywhere in the key (`encoder.sub{prefix}weight` "
                       "loses it too), not just at the start")
            else:
                if len(call.args) != 1:
                    continue
                why = f"`lstrip` removes any of the characters of `{prefix}` from the start, not the prefix"
            fixed = _fix_text(ctx, receiver, ctx.code(literal))
            edits = [ctx.replace(call, fixed)] if fixed else []
            ctx.report(call, f"{why}; use `{fixed or ctx.code(receiver) + '.removeprefix(...)'}`", edits)
        for node in ctx.nodes(cst.Subscript):
            self._slice(ctx, node)

    def _slice(self, ctx, node: cst.Subscript) -> None:
        got = _slice_start(ctx, node)
        if got is None or not isinstance(node.value, cst.Name):
            return
        length, literal = got
        prefix = string_value(literal) if literal is not None else _LENGTHS.get(length)
        if prefix not in PREFIXES:
            return
        key = node.value
        if not self._is_state_dict_key(ctx, key) or self._guarded(ctx, node, key.value):
            return
        sl = node.slice[0].slice
        spelled = ctx.code(sl.lower.args[0].value) if literal is not None else None
        fixed = _fix_text(ctx, key, spelled) if spelled is not None else None
        how = f"it strips {length} characters (the length of `{prefix}`)"
        ctx.report(
            node,
            f"`{ctx.code(node)}` on a state-dict key without a `{key.value}.startswith(...)` check: "
            f"{how} also from keys that do not carry the prefix; use "
            f"`{key.value}.removeprefix(\"{prefix}\")`",
            [ctx.replace(node, fixed)] if fixed else [],
        )

    def _is_state_dict_key(self, ctx, key: cst.Name) -> bool:
        binds, _ = ctx.values.bindings(key)
        if len(binds) != 1 or binds[0].kind != "other":
            return False
        loop = ctx.parent(binds[0].node)
        if isinstance(loop, cst.Element):
            tup = ctx.parent(loop)
            if not isinstance(tup, cst.Tuple) or tup.elements[0] is not loop:
                return False
            loop = ctx.parent(tup)
        if not isinstance(loop, (cst.For, cst.CompFor)):
            return False
        it = loop.iter
        if isinstance(it, cst.Call):
            receiver, meth = method_call(it)
            if meth not in ("items", "keys") or receiver is None:
                return False
            it = receiver
        if ctx.values.of(it).kind in (STATE_DICT, LOADED):
            return True
        return bool(_STATEY.search(ctx.code(it)))

    def _guarded(self, ctx, node, name: str, strict: bool = False) -> bool:
        """A test on the key above the slice: `if k.startswith(...)`, `if "module." in k`, a
        comprehension's `if` clause, a conditional expression."""
        p = node
        for _ in range(64):
            child, p = p, ctx.parent(p)
            if p is None or isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Module)):
                return False
            tests = []
            if isinstance(p, (cst.If, cst.While)) and child is not p.test:
                tests.append(p.test)
            elif isinstance(p, cst.IfExp) and child is not p.test:
                tests.append(p.test)
            elif isinstance(p, (cst.DictComp, cst.ListComp, cst.SetComp, cst.GeneratorExp)):
                f = p.for_in
                while f is not None:
                    tests.extend(c.test for c in f.ifs)
                    f = f.inner_for_in
            for t in tests:
                code = ctx.code(t)
                if name in code and ("startswith" in code or (" in " in code and not strict)):
                    return True
                if not strict and "startswith" in code and ("module" in code or "_orig_mod" in code):
                    return True  # `if next(iter(sd)).startswith("module."):` checks the whole dict
        return False
