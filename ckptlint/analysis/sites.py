"""torch.save / torch.load sites of one file, from the stdlib `ast` (for the project index).

A site records the path it writes or reads as a key that different spellings of the same
path share: `"ckpt/model.pt"`, `os.path.join(d, "model.pt")`, `f"{d}/model.pt"` and
`Path(d) / "model.pt"` all have literal parts `{}/model.pt`; a module-level constant (also one
imported from another project file) stands for its value.
"""

from __future__ import annotations

import ast
import re
from typing import Callable, Dict, List, Optional, Tuple

from ckptlint.analysis.ast_walk import segment, walk
from ckptlint.analysis.qnames import dotted

HOLE = "{}"
_FILE_LIKE = re.compile(r"[\w\-]\.[A-Za-z0-9]{1,12}$")
_MODULE_USES = frozenset(["eval", "train", "parameters", "named_parameters", "modules", "forward", "children", "named_modules"])
SAME_VALUE = frozenset(["to", "cuda", "cpu", "eval", "train", "half", "float", "double"])


def path_key(node, local: Dict[str, ast.AST], qualify: Callable, _depth: int = 0):
    """("lit", text-with-{}-holes) / ("ref", qualified name) / None."""
    if _depth > 6 or node is None:
        return None
    parts = _parts(node, local, qualify, _depth)
    if parts is None:
        return None
    if len(parts) == 1 and parts[0][0] == "ref":
        return parts[0]
    text = "".join(p[1] if p[0] == "lit" else HOLE for p in parts)
    return ("lit", text.replace("\\", "/").replace("//", "/"))


def _parts(node, local, qualify, depth) -> Optional[List[Tuple[str, str]]]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [("lit", node.value)]
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                out.append(("lit", v.value))
            else:
                out.append(("hole", HOLE))
        return out
    if isinstance(node, ast.Call):
        name = qualify(dotted(node.func))
        if name in ("os.path.join", "posixpath.join", "ntpath.join") and node.args:
            out = []
            for i, a in enumerate(node.args):
                if i:
                    out.append(("lit", "/"))
                out.extend(_operand(a, local, qualify, depth))
            return out
        if name in ("pathlib.Path", "pathlib.PurePath") and len(node.args) == 1:
            return _operand(node.args[0], local, qualify, depth)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add)):
        left = _operand(node.left, local, qualify, depth)
        right = _operand(node.right, local, qualify, depth)
        if not any(p[0] == "lit" for p in left + right):
            return None
        sep = [("lit", "/")] if isinstance(node.op, ast.Div) else []
        return left + sep + right
    if isinstance(node, ast.Name):
        if node.id in local:
            return _parts(local[node.id], {k: v for k, v in local.items() if k != node.id}, qualify, depth + 1)
        q = qualify(node.id)
        return [("ref", q)] if q else None
    if isinstance(node, ast.Attribute):
        q = qualify(dotted(node))
        return [("ref", q)] if q else None
    return None


def _operand(node, local, qualify, depth) -> List[Tuple[str, str]]:
    got = _parts(node, local, qualify, depth + 1)
    if got is None:
        return [("hole", HOLE)]
    return [("hole", HOLE) if p[0] == "ref" else p for p in got]


def usable(text: str) -> bool:
    """Only keys that end in a file name pair (not `{}` or a bare folder)."""
    last = text.rsplit("/", 1)[-1]
    return HOLE not in last and bool(_FILE_LIKE.search(last))


def describe_value(expr, qualify: Callable, local: Optional[Dict[str, ast.AST]] = None, depth: int = 0,
                   owner: Optional[Callable[[str], Optional[str]]] = None):
    """What an expression holds, as far as one file's `ast` tells: ["state_dict"], ["module"]
    (unwrapped from a wrapper: `x.module`, `de_parallel(m)`), ["call", qualified name] (a
    class the project index can look up), ["attrs", class, [attr, ...]] (`self.ema.ema`, or
    `ema.ema` with `ema = ModelEMA(m)`: `owner` names the class of `self`), ["?"]; None for
    `None` (a placeholder). Methods a module returns itself from (`.half()`, `.eval()`) and
    `deepcopy` are seen through, and names through `local` (simple assignments before the use)."""
    from ckptlint.analysis.library import UNWRAP_FUNCS

    if isinstance(expr, ast.Constant) and expr.value is None:
        return None
    if depth > 6:
        return ["?"]
    chain = []
    root = expr
    while isinstance(root, ast.Attribute) and root.attr != "module":
        chain.append(root.attr)
        root = root.value
    if chain and isinstance(root, ast.Name):
        bound = (local or {}).get(root.id)
        cls = qualify(dotted(bound.func)) if isinstance(bound, ast.Call) else (owner(root.id) if owner else None)
        if cls:
            return ["attrs", cls, list(reversed(chain))]
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "state_dict":
            return ["state_dict"]
        if isinstance(func, ast.Attribute) and func.attr in SAME_VALUE:
            return describe_value(func.value, qualify, local, depth + 1, owner)
        name = qualify(dotted(func))
        if name == "copy.deepcopy" and expr.args:
            return describe_value(expr.args[0], qualify, local, depth + 1, owner)
        if (name or "").rsplit(".", 1)[-1] in UNWRAP_FUNCS:
            return ["module"]
        return ["call", name] if name else ["?"]
    if isinstance(expr, ast.Attribute) and expr.attr == "module":
        return ["module"]
    if isinstance(expr, ast.Name) and local and expr.id in local:
        rest = {k: v for k, v in local.items() if k != expr.id}
        return describe_value(local[expr.id], qualify, rest, depth + 1, owner)
    return ["?"]


# Entries that, holding a bare name, hold the run's configuration object (an argparse
# Namespace, a config class): `weights_only=True` refuses them. `vars(args)` is a dict.
_CONFIG_KEYS = frozenset(["args", "opt", "cfg", "config", "hparams", "hyper_parameters", "hyperparameters"])


def _config_object(key: str, value, text: Optional[str]) -> Optional[list]:
    if key in _CONFIG_KEYS and isinstance(value, (ast.Name, ast.Attribute)):
        return ["object", (segment(text, value) if text else None) or ast.unparse(value)]
    return None


def _arg(call: ast.Call, index: int, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    plain = [a for a in call.args if not isinstance(a, ast.Starred)]
    if len(plain) != len(call.args) and len(call.args) > index:
        return None
    return call.args[index] if len(call.args) > index else None


class _Sites:
    def __init__(self, tree, qualify, text: Optional[str] = None):
        self.qualify = qualify
        self.text = text
        nodes, self.parents = walk(tree)
        calls, entries = [], []  # calls, and subscripts / `.get(...)` for module_entries
        for node in nodes:
            if isinstance(node, ast.Call):
                calls.append(node)
                if isinstance(node.func, ast.Attribute) and node.args:
                    entries.append(node)
            elif isinstance(node, ast.Subscript):
                entries.append(node)
        self.saves: List[dict] = []
        self.loads: List[dict] = []
        per_line: Dict[int, int] = {}
        calls.sort(key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            name = qualify(dotted(call.func))
            if name not in ("torch.save", "torch.load"):
                continue
            ordinal = per_line.get(call.lineno, 0)
            per_line[call.lineno] = ordinal + 1
            if name == "torch.save":
                self._save(call, ordinal)
            else:
                self._load(call, ordinal)
        from ckptlint.analysis.contents import module_entries

        self.module_entries = module_entries(self, entries)

    def scope_of(self, node):
        p = self.parents.get(node)
        while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            p = self.parents.get(p)
        return p

    def locals_before(self, node) -> Dict[str, ast.AST]:
        """Simple `name = value` bindings of the enclosing scope before `node` (last wins)."""
        scope = self.scope_of(node)
        out: Dict[str, ast.AST] = {}
        if scope is None:
            return out
        for n in ast.walk(scope):
            if (
                isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                and (n.lineno, n.col_offset) < (node.lineno, node.col_offset)
                and self.scope_of(n) is scope
            ):
                prev = out.get(n.targets[0].id)
                if prev is None or (prev.lineno, prev.col_offset) < (n.value.lineno, n.value.col_offset):
                    out[n.targets[0].id] = n.value
        return out

    def _set_entries(self, name: str, before) -> List[tuple]:
        """(key node, value) of `name["k"] = value` in the scope of `before`, above it."""
        scope = self.scope_of(before)
        out = []
        for n in ast.walk(scope):
            if (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Subscript)
                    and isinstance(n.targets[0].value, ast.Name) and n.targets[0].value.id == name
                    and n.lineno < before.lineno and self.scope_of(n) is scope):
                out.append((n.targets[0].slice, n.value))
        return sorted(out, key=lambda kv: (kv[1].lineno, kv[1].col_offset))

    def class_of_self(self, node, name: str) -> Optional[str]:
        """The qualified name of the class whose method `node` is in, when `name` is that
        method's first parameter (`self`)."""
        fn = self.scope_of(node)
        cls = self.parents.get(fn) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        if isinstance(cls, ast.ClassDef) and fn.args.args and fn.args.args[0].arg == name:
            return self.qualify(cls.name)
        return None

    def later_reads(self, name: str, assign) -> List[ast.Name]:
        """Reads of `name` after `assign`, in the same scope, in source order."""
        scope = self.scope_of(assign)
        after = (assign.lineno, assign.col_offset)
        found = [n for n in ast.walk(scope)
                 if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                 and (n.lineno, n.col_offset) > after and self.scope_of(n) is scope]
        return sorted(found, key=lambda n: (n.lineno, n.col_offset))

    def _key(self, expr, node, local: Optional[Dict[str, ast.AST]] = None):
        if expr is None:
            return None
        key = path_key(expr, self.locals_before(node) if local is None else local, self.qualify)
        if key is None:
            return None
        if key[0] == "lit" and not usable(key[1]):
            return None
        return list(key)

    def _save(self, call, ordinal) -> None:
        """Every save: "path" is None unless it can pair; "obj" says what it saves
        (describe_value), "entries" what each string key of a saved dict literal holds."""
        local = self.locals_before(call)  # one scan of the scope for the path and the object
        key = self._key(_arg(call, 1, "f"), call, local)
        expr = _arg(call, 0, "obj")
        pairs = []
        if isinstance(expr, ast.Name) and isinstance(local.get(expr.id), ast.Dict):
            pairs = self._set_entries(expr.id, call)  # `ckpt["args"] = args` after the literal
            expr = local[expr.id]
        entries = None
        owner = lambda name: self.class_of_self(call, name)  # noqa: E731
        if isinstance(expr, ast.Dict):
            entries = {}
            for k, v in list(zip(expr.keys, expr.values)) + pairs:
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    entries[k.value] = _config_object(k.value, v, self.text) or describe_value(
                        v, self.qualify, local, owner=owner)
        obj = describe_value(expr, self.qualify, local, owner=owner) if expr is not None else None
        self.saves.append({"line": call.lineno, "ordinal": ordinal, "path": key, "obj": obj, "entries": entries})

    def _load(self, call, ordinal) -> None:
        """Every load: "path" is None unless it is one that can pair, "expects" is None when
        its use says nothing; "holds", "module_keys" and "keys" (the entries it reads) are
        what its uses show (contents.py)."""
        from ckptlint.analysis.contents import load_contents

        key = self._key(_arg(call, 0, "f"), call)
        holds, module_keys, read = load_contents(self, call, self.text)
        self.loads.append({"line": call.lineno, "ordinal": ordinal, "path": key, "expects": self._expects(call),
                           "holds": holds, "module_keys": module_keys, "keys": read})

    def _expects(self, call) -> Optional[str]:
        parent = self.parents.get(call)
        if isinstance(parent, ast.Call) and parent.args and parent.args[0] is call:
            if isinstance(parent.func, ast.Attribute) and parent.func.attr == "load_state_dict":
                return "state_dict"
        if isinstance(parent, ast.Attribute) and parent.attr in _MODULE_USES:
            return "module"
        if (
            isinstance(parent, ast.Assign) and len(parent.targets) == 1
            and isinstance(parent.targets[0], ast.Name)
        ):
            return self._use_of(parent.targets[0].id, parent)
        return None

    def _use_of(self, name: str, assign) -> Optional[str]:
        found = []
        for n in self.later_reads(name, assign):
            p = self.parents.get(n)
            if isinstance(p, ast.Return):
                continue  # handed to the caller: says nothing here
            if isinstance(p, ast.Call) and p.args and p.args[0] is n and isinstance(p.func, ast.Attribute) \
                    and p.func.attr == "load_state_dict":
                found.append("state_dict")
            elif isinstance(p, ast.Attribute) and p.attr in _MODULE_USES:
                found.append("module")
            elif isinstance(p, ast.Call) and p.func is n:
                found.append("module")
            else:
                return None  # used in some other way too: do not guess
        kinds = set(found)
        return found[0] if len(kinds) == 1 else None


def collect_sites(tree, qualify, text: Optional[str] = None) -> Tuple[List[dict], List[dict], List[list]]:
    """(saves, loads, entries used as modules: contents.module_entries) of one file."""
    s = _Sites(tree, qualify, text)
    return s.saves, s.loads, s.module_entries
