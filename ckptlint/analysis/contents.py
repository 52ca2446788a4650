"""What the code does with what `torch.load` returns, and whether that shows the file holds
more than tensors and containers: a pickled module (`ckpt["model"].fuse()`, `net.eval()`,
`for p in ckpt["model"].parameters()`) or another pickled object (`ckpt["args"].lr`,
`ckpt["model"].yaml`, `vars(ckpt["opt"])`). `weights_only=True` refuses such a file.

Worked out on the stdlib `ast` for every load site the project index records (sites.py), so a
rule sees it for the linted file and for the project's other files alike. The loaded value is
followed through subscripts (`ckpt["model"]`), `.get(...)`, methods a tensor and a module
share (`.to()`, `.float()`), `a or b`, and names bound to any of these in the same scope (also
`self.x = torch.load(...)` read later in the same function)."""

from __future__ import annotations

import ast
import re
from typing import Iterator, List, Optional, Tuple

from ckptlint.analysis.ast_walk import segment
from ckptlint.analysis.qnames import dotted

# Methods only an nn.Module has (not a tensor, a dict, a list or a number).
MODULE_METHODS = frozenset([
    "eval", "train", "fuse", "parameters", "named_parameters", "buffers", "named_buffers",
    "modules", "named_modules", "children", "named_children", "state_dict", "load_state_dict",
    "forward", "apply", "zero_grad", "register_buffer", "register_parameter",
    "register_forward_hook", "register_forward_pre_hook", "add_module", "get_submodule",
])
# Methods of both tensors and modules: the value stays what it was.
_SHARED = frozenset(["to", "cuda", "cpu", "float", "half", "double", "bfloat16", "type"])
# Plain attributes (not methods) of a tensor or an ndarray: reading one shows nothing.
_DATA_ATTRS = frozenset([
    "shape", "dtype", "device", "T", "mT", "H", "mH", "data", "grad", "ndim", "is_cuda",
    "requires_grad", "real", "imag", "layout", "names", "itemsize", "nbytes", "is_sparse",
    "is_quantized", "is_leaf", "grad_fn", "is_meta", "size", "flat", "strides",
])
_ENTRY_METHODS = frozenset(["get", "pop", "setdefault"])
# Dict keys that name a model's part of a checkpoint (`"model"`, `"ema"`, `"netG"`, ...).
MODELISH_KEY = re.compile(r"model|net|ema|generator|discriminator|encoder|decoder|backbone", re.IGNORECASE)
# Readers whose input is numpy data, never tensors (espnet's chainer-era snapshots).
_NUMPY_READERS = ("chainer.",)


def load_contents(sites, call: ast.Call, text: Optional[str]) -> Tuple[Optional[dict], list, list]:
    """(evidence, entry keys used as modules, entry keys read) for one `torch.load` call. The
    evidence is {"kind": "module" | "object" | "returned", "entry": key or None, "line": n,
    "use": source} for the first use that shows a module, else the first that shows another
    object, else a `return` handing the whole loaded value to the function's callers; a key
    "" among those used as modules stands for the whole loaded value."""
    found = list(_uses(sites, call, None, 0))
    shows = [f for f in found if f[0] in ("module", "object")]
    modules = [f for f in shows if f[0] == "module"]
    keys = sorted({f[1] or "" for f in modules})
    read = sorted({f[1] for f in found if f[0] == "entry" and f[1] != "?"})
    # a pure loader (it reads no entry of what it returns) leaves the content to its callers
    touched = any(f[0] == "entry" for f in found)
    returned = [f for f in found if f[0] == "returned"] if not touched and not shows else []
    first = (modules or shows or returned or [None])[0]
    if first is None:
        return None, keys, read
    kind, entry, node = first
    use = (segment(text, node) if text else None) or ast.unparse(node)
    return {"kind": kind, "entry": entry, "line": node.lineno, "use": use}, keys, read


def module_entries(sites, nodes) -> List[list]:
    """[[key, line], ...] of the model-ish entries this file uses as modules, whatever the
    dict came from: `(ckpt.get("ema") or ckpt["model"]).to(device).fuse()` after a helper
    returned `ckpt`. A checkpoint saved with such an entry as a module has a reader here."""
    found = {}
    for node in nodes:  # the file's subscripts and method calls with arguments
        if isinstance(node, ast.Subscript):
            key = _key(node.slice)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in _ENTRY_METHODS and node.args):
            key = _key(node.args[0])
        else:
            continue
        if key in found or key == "?" or not MODELISH_KEY.search(key):
            continue
        if any(kind == "module" for kind, _, _ in _uses(sites, node, key, 0)):
            found[key] = [key, node.lineno]
    return sorted(found.values())


def _uses(sites, node, entry: Optional[str], depth: int) -> Iterator[tuple]:
    """(kind, entry, node) for each use of `node`'s value that shows what it holds, and
    ("entry", key, node) for each entry of the loaded dict it reads."""
    if depth > 12:
        return
    p = sites.parents.get(node)
    if isinstance(p, ast.Subscript) and p.value is node:
        if entry is None:
            yield "entry", _key(p.slice), p
        yield from _uses(sites, p, entry or _key(p.slice), depth + 1)
    elif isinstance(p, ast.Attribute) and p.value is node:
        call = sites.parents.get(p)
        if isinstance(call, ast.Call) and call.func is p:
            if p.attr in MODULE_METHODS:
                yield "module", entry, call
            elif p.attr in _SHARED:
                yield from _uses(sites, call, entry, depth + 1)
            elif p.attr in _ENTRY_METHODS and call.args:
                if entry is None:
                    yield "entry", _key(call.args[0]), call
                yield from _uses(sites, call, entry or _key(call.args[0]), depth + 1)
        elif p.attr not in _DATA_ATTRS:
            yield "object", entry, p
    elif isinstance(p, ast.Call) and p.func is node:
        yield "module", entry, p
    elif isinstance(p, ast.Call) and p.args and p.args[0] is node and _name(p.func) in ("vars", "getattr"):
        yield "object", entry, p  # only objects have attributes to read
    elif isinstance(p, ast.Call) and node in p.args and (sites.qualify(dotted(p.func)) or "").startswith(_NUMPY_READERS):
        yield "object", entry, p  # chainer's serializers read numpy arrays, not tensors
    elif isinstance(p, ast.BoolOp):
        yield from _uses(sites, p, entry, depth + 1)
    elif isinstance(p, ast.Return) and entry is None:
        yield "returned", None, p  # the callers decide what the file may hold
    elif isinstance(p, ast.Assign) and p.value is node and len(p.targets) == 1:
        for use in _reads_of(sites, p.targets[0], p):
            yield from _uses(sites, use, entry, depth + 1)


def _key(node) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"


def _name(func) -> Optional[str]:
    return func.id if isinstance(func, ast.Name) else None


def _reads_of(sites, target, assign) -> Iterator[ast.AST]:
    """Reads of what `target = ...` bound: the name later in the same scope; for `self.x`,
    `self.x` later in the same function."""
    if isinstance(target, ast.Name):
        yield from sites.later_reads(target.id, assign)
    elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        scope = sites.scope_of(assign)
        for n in ast.walk(scope):
            if (isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and n.attr == target.attr
                    and isinstance(n.value, ast.Name) and n.value.id == target.value.id
                    and (n.lineno, n.col_offset) > (assign.lineno, assign.col_offset)):
                yield n
