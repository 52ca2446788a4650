from __future__ import annotations

import ast
import re
from typing import Optional

import libcst as cst

from ckptlint.analysis.calls import method_call, string_value
from ckptlint.analysis.kinds import LOADED, STATE_DICT
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._shared import quoted_code

# DataParallel / DDP wrap the whole model: `module.` starts a key once, at the top. And it
# ends other names (`submodule.`, `encoder.module.`), so `replace` can damage a key.
TOP_LEVEL = ("module.",)
# torch.compile, FSDP and activation checkpointing wrap submodules too, so these occur at
# every level (`layers.0._fsdp_wrapped_module.weight`), and no other name ends with them:
# `replace` is right (torch's own key cleaning uses it), `removeprefix` would be wrong.
EVERY_LEVEL = ("_orig_mod.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")
PREFIXES = TOP_LEVEL + EVERY_LEVEL
_LENGTHS = {len(p): p for p in PREFIXES}
_STATEY = re.compile(r"state|\bsd\b|_sd\b|ckpt|checkpoint|weights|pretrained", re.IGNORECASE)
_MATCHERS = ("match", "fullmatch", "search")


def _fix_text(ctx, receiver, literal: str) -> Optional[str]:
    """`k.removeprefix(P)`, or below Python 3.9 (the project's floor) the `startswith`
    conditional."""
    target = getattr(ctx.settings, "target_version", None)
    if target is None or target >= (3, 9):
        return f"{ctx.code(receiver)}.removeprefix({literal})"
    if not isinstance(receiver, (cst.Name, cst.Attribute)):
        return None  # evaluated twice in the conditional form: only for plain names
    k = ctx.code(receiver)
    return f"({k}[len({literal}):] if {k}.startswith({literal}) else {k})"


def _floor_note(ctx) -> str:
    target = getattr(ctx.settings, "target_version", None)
    if target is None or target >= (3, 9):
        return ""
    source = getattr(ctx.settings, "target_version_source", None)
    where = f", {source}" if source else ""
    return f" (Python {target[0]}.{target[1]}{where}, has no `removeprefix`)"


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


def _subtree(node):
    yield node
    for child in node.children:
        yield from _subtree(child)


def _is_key(expr, name: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == name


def _head_of_key(expr, name: str) -> bool:
    """An expression that is the start of the key: `k[:7]`, `k[0:len(p)]`, `k.split(".")[0]`,
    `k.find(p)`, `k.index(p)`, `k.partition(".")[0]`."""
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
        sl = expr.slice[0].slice
        if _is_key(expr.value, name) and isinstance(sl, cst.Slice) and sl.upper is not None and sl.step is None:
            return True
        if isinstance(expr.value, cst.Call):
            receiver, meth = method_call(expr.value)
            return meth in ("split", "partition") and _is_key(receiver, name)
        return False
    if isinstance(expr, cst.Call):
        receiver, meth = method_call(expr)
        return meth in ("find", "index") and _is_key(receiver, name)
    return False


def tests_prefix(ctx, test, name: str) -> bool:
    """Does `test` look at how the key `name` starts, in any usual spelling:
    `k.startswith(p)`, `k[:7] == "module."`, `k[:len(p)] == p`, `k.split(".")[0] == "module"`,
    `k.find(p) == 0`, `re.match("^module\\.", k)`?"""
    for node in _subtree(test):
        if isinstance(node, cst.Call):
            receiver, meth = method_call(node)
            if meth == "startswith" and _is_key(receiver, name):
                return True
            if meth in _MATCHERS and any(_is_key(a.value, name) for a in node.args):
                return True  # re.match(p, k), PATTERN.match(k)
        elif isinstance(node, cst.Comparison):
            sides = [node.left] + [c.comparator for c in node.comparisons]
            if any(_head_of_key(e, name) for e in sides):
                return True
    return False


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
    requires_text = ("module.'", 'module."', "_orig_mod.'", '_orig_mod."',
                     re.compile(r"\[\s*(?:%s)\s*:\s*:?\s*\]" % "|".join(map(str, sorted(_LENGTHS)))))
    # then, on the stdlib AST: a `.replace` of `module.`, an `.lstrip` of a prefix literal, or
    # a slice `name[7:]` / `name[len(...):]` (triage.py)
    probe_types = (ast.Call, ast.Subscript)
    docs = """
    ## What it does
    Checks for state-dict keys stripped of a wrapper prefix in a way that damages other keys:
    `k.replace("module.", "")`, `k.lstrip(...)` of any wrapper prefix (`module.`,
    `_orig_mod.`, `_fsdp_wrapped_module.`, `_checkpoint_wrapped_module.`), and keys of a state
    dict sliced by a prefix's length (`k[7:]`, `k[len("module."):]`) in a loop or
    comprehension over the state dict, with no test of how the key starts above the slice
    (`k.startswith(p)`, `k[:7] == "module."`, `k.split(".")[0] == "module"`,
    `re.match("^module\\.", k)`, an `if not ...: continue` before it, or a check of the
    dict's first key).

    `k.replace(p, "")` is left alone for `_orig_mod.`, `_fsdp_wrapped_module.` and
    `_checkpoint_wrapped_module.`: `torch.compile`, FSDP and activation checkpointing wrap
    submodules too, so those prefixes occur at every level of a key, and no other name ends
    with them; `replace` is the right tool there (torch's own key cleaning uses it).

    ## Why is this bad?
    `module.` also ends other names: `replace` removes it wherever it occurs, so
    `encoder.submodule.weight` becomes `encoder.subweight`, and those weights are then
    missing (or silently skipped with `strict=False`). `lstrip` removes *characters*, not a
    prefix: `model.layer` loses its leading `m`, `o`, `d`, ... An unguarded `k[7:]` chops the
    first seven characters off keys that never had the prefix (a checkpoint saved without
    `DataParallel`).

    ## Example
    ```python
    state = {k.replace("module.", ""): v for k, v in state.items()}
    ```

    ## Use instead
    ```python
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ```
    Below Python 3.9, `k[len("module."):] if k.startswith("module.") else k`: the fix writes
    that form when the project's oldest Python is older (`target-version` in
    `[tool.ckptlint]`, else `requires-python` in `[project]`, else `python_requires` in
    `setup.cfg` / `setup.py`).

    ## Fix safety
    Safe: only keys that start with `module.` change, and only at the start. Fixed only for
    `module.`, the one prefix that wraps the whole model: for the others, which can occur at
    every level, the message says what to write instead. A `k[7:]` slice is fixed only when
    the code states which prefix it strips (`k[len("module."):]`); otherwise the finding has
    no fix, since the slice may strip something else.
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
        Valid("for k, v in state_dict.items():\n    if 'module.' in k:\n        k = k[7:]\n"),
        Valid(
            "if next(iter(state_dict.items()))[0].startswith('module'):\n"
            "    state_dict = {k[7:]: v for k, v in state_dict.items()}\n"
        ),
        # nested FSDP / compile / activation checkpointing: the prefix is at every level
        Valid(
            "params = {}\nfor k, v in model.named_parameters():\n    if '_fsdp_wrapped_module' in k:\n"
            "        k = k.replace('_fsdp_wrapped_module.', '')\n    params[k] = v\n"
        ),
        Valid("sd = {k.replace('_orig_mod.', ''): v for k, v in sd.items()}\n"),
        Valid("clean = {k.replace('_checkpoint_wrapped_module.', ''): v for k, v in state.items()}\n"),
        # guards in other spellings
        Valid(
            "for k in ema_state:\n    if k[:7] == 'module.':\n        model_state[k[7:]] = ema_state[k]\n"
        ),
        Valid(
            "PREFIX = 'module.'\nsd = {k[len(PREFIX):]: v for k, v in state_dict.items() if k[:len(PREFIX)] == PREFIX}\n"
        ),
        Valid(
            "import re\nfor k, v in checkpoint.items():\n    if re.match(r'^module\\.', k):\n        out[k[7:]] = v\n"
        ),
        Valid(
            "for k, v in state_dict.items():\n    if not k.startswith('module.'):\n        continue\n"
            "    out[k[7:]] = v\n"
        ),
        Valid("sd = {k[7:] if k.split('.')[0] == 'module' else k: v for k, v in sd.items()}\n"),
    )
    invalid = (
        Invalid(
            "sd = {k.replace('module.', ''): v for k, v in sd.items()}\n",
            "sd = {k.removeprefix('module.'): v for k, v in sd.items()}\n",
        ),
        Invalid(
            "sd = {k.replace('module.', '', 1): v for k, v in sd.items()}\n",
            "sd = {k.removeprefix('module.'): v for k, v in sd.items()}\n",
        ),
        Invalid(
            # guarded, yet `replace` still takes `module.` out of the middle of the key
            "sd = {(k.replace('module.', '') if k.startswith('module.') else k): v for k, v in sd.items()}\n",
            "sd = {(k.removeprefix('module.') if k.startswith('module.') else k): v for k, v in sd.items()}\n",
        ),
        Invalid(
            "name = k.lstrip('module.')\n",
            "name = k.removeprefix('module.')\n",
            message_contains="characters",
        ),
        Invalid(
            "name = k.lstrip('_orig_mod.')\n",
            help_contains="use `k.replace(\"_orig_mod.\", \"\")`",
        ),
        Invalid(
            "sd = {k.replace('module.', ''): v for k, v in sd.items()}\n",
            "sd = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in sd.items()}\n",
            help_contains="Python 3.8, `target-version` in pyproject.toml, has no `removeprefix`",
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
        Invalid(
            # a test of another key does not guard this one
            "for k, v in state_dict.items():\n    if name.startswith('module.'):\n        out[k[7:]] = v\n"
        ),
    )

    @staticmethod
    def probe(node) -> bool:
        if isinstance(node, ast.Call):
            f, args = node.func, node.args
            if not (isinstance(f, ast.Attribute) and args and isinstance(args[0], ast.Constant)):
                return False
            return (f.attr == "replace" and args[0].value in TOP_LEVEL) or (f.attr == "lstrip" and args[0].value in PREFIXES)
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
                if prefix not in TOP_LEVEL or len(call.args) < 2 or string_value(call.args[1].value) != "":
                    continue
                why = (f"`replace` removes `{prefix}` anywhere in the key (`encoder.sub{prefix}weight` "
                       "loses it too), not just at the start")
                headline = f"`replace` strips `{prefix}` anywhere in the key, not just at its start"
            else:
                if len(call.args) != 1:
                    continue
                why = f"`lstrip` removes any of the characters of `{prefix}` from the start, not the prefix"
                headline = f"`lstrip` strips any of the characters of `{prefix}`, not the prefix"
            if prefix not in TOP_LEVEL:
                instead = f'{ctx.code(receiver)}.replace("{prefix}", "")'
                ctx.report(call, headline, help=f"{why}; use `{instead}` (this wrapper's prefix can occur at every level)")
                continue
            fixed = _fix_text(ctx, receiver, ctx.code(literal))
            edits = [ctx.replace(call, fixed)] if fixed else []
            ctx.report(call, headline, edits,
                       help=f"{why}; use `{fixed or ctx.code(receiver) + '.removeprefix(...)'}`{_floor_note(ctx)}")
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
        state = self._state_dict_of(ctx, key)
        if state is None or self._guarded(ctx, node, key.value, ctx.code(state)):
            return
        sl = node.slice[0].slice
        spelled = ctx.code(sl.lower.args[0].value) if literal is not None else None
        fixed = _fix_text(ctx, key, spelled) if spelled is not None and prefix in TOP_LEVEL else None
        how = f"it strips {length} characters (the length of `{prefix}`)"
        instead = fixed or f'{key.value}.removeprefix("{prefix}")'
        ctx.report(
            node,
            f"{quoted_code(ctx.code(node), 30)} strips {length} characters also from keys without `{prefix}`",
            [ctx.replace(node, fixed)] if fixed else [],
            help=f"`{ctx.code(node)}` on a state-dict key without a `{key.value}.startswith(...)` check: "
                 f"{how} also from keys that do not carry the prefix; use `{instead}`"
                 + (_floor_note(ctx) if fixed else ""),
        )

    def _state_dict_of(self, ctx, key: cst.Name):
        """The state dict whose keys `key` loops over, else None."""
        binds, _ = ctx.values.bindings(key)
        if len(binds) != 1 or binds[0].kind != "other":
            return None
        loop = ctx.parent(binds[0].node)
        if isinstance(loop, cst.Element):
            tup = ctx.parent(loop)
            if not isinstance(tup, cst.Tuple) or tup.elements[0] is not loop:
                return None
            loop = ctx.parent(tup)
        if not isinstance(loop, (cst.For, cst.CompFor)):
            return None
        it = loop.iter
        if isinstance(it, cst.Call):
            receiver, meth = method_call(it)
            if meth not in ("items", "keys") or receiver is None:
                return None
            it = receiver
        if ctx.values.of(it).kind in (STATE_DICT, LOADED) or _STATEY.search(ctx.code(it)):
            return it
        return None

    def _guarded(self, ctx, node, name: str, state: str) -> bool:
        """A test of how the key starts above the slice (an `if`, a conditional expression, a
        comprehension's `if` clause), or before it (`if not k.startswith(p): continue`); or
        `"module." in k`; or a check of the dict's first key."""
        p = node
        for _ in range(64):
            child, p = p, ctx.parent(p)
            if p is None or isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Module)):
                return False
            tests = []
            if isinstance(p, (cst.If, cst.While, cst.IfExp)) and child is not p.test:
                tests.append(p.test)
            elif isinstance(p, (cst.DictComp, cst.ListComp, cst.SetComp, cst.GeneratorExp)):
                f = p.for_in
                while f is not None:
                    tests.extend(c.test for c in f.ifs)
                    f = f.inner_for_in
            elif isinstance(p, cst.IndentedBlock):
                tests.extend(self._exits_before(child, p))
            for t in tests:
                if tests_prefix(ctx, t, name):
                    return True
                code = ctx.code(t)
                if name in code and " in " in code:
                    return True  # `if "module." in k:`
                if "startswith" in code and state in code:
                    return True  # `if next(iter(sd)).startswith("module."):` checks the whole dict
        return False

    @staticmethod
    def _exits_before(stmt, block: cst.IndentedBlock):
        """Tests of `if ...: continue` (or break / return / raise) statements before `stmt`."""
        for s in block.body:
            if s is stmt:
                return
            if isinstance(s, cst.If) and s.orelse is None:
                last = s.body.body[-1] if s.body.body else None
                small = last.body if isinstance(last, cst.SimpleStatementLine) else (
                    s.body.body if isinstance(s.body, cst.SimpleStatementSuite) else ())
                if any(isinstance(x, (cst.Continue, cst.Break, cst.Return, cst.Raise)) for x in small):
                    yield s.test
