"""Compare a checkpoint's state dict with a model (CKPT103-107, CKPT110). Imports torch.

The model is built under ``torch.device("meta")`` (no memory for weights); when its
``__init__`` needs real data it is built normally and moved to meta. Missing and unexpected
keys come from torch itself: ``load_state_dict(strict=False)`` on meta tensors carrying the
checkpoint's ``_metadata``, so BatchNorm versions, non-persistent buffers and tied weights
are judged exactly as torch judges them.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from ckptlint.diagnostic import HEADLINE, Diagnostic, fit_headline, split_headline
from ckptlint.reader.records import TensorInfo
from ckptlint.rules.ckpt103_missing_keys import MissingKeys
from ckptlint.rules.ckpt104_unexpected_keys import UnexpectedKeys
from ckptlint.rules.ckpt105_shape_mismatch import ShapeMismatch
from ckptlint.rules.ckpt106_dtype_mismatch import DtypeMismatch
from ckptlint.rules.ckpt107_key_prefix import KeyPrefix
from ckptlint.rules.ckpt110_optimizer_mismatch import OptimizerMismatch

WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class ModelError(Exception):
    """The configured model could not be imported or built."""


def load_model(spec: str, kwargs: dict, root) -> "torch.nn.Module":
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    root = str(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    # user code may print: keep stdout clean for --output-format json
    with contextlib.redirect_stdout(sys.stderr):
        try:
            target = importlib.import_module(module_name)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from user code too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ModelError(f"cannot import model `{spec}`: {type(exc).__name__}: {exc}") from None
        for part in attr.split("."):
            if not hasattr(target, part):
                raise ModelError(f"cannot import model `{spec}`: `{module_name}` has no `{attr}`")
            target = getattr(target, part)
        if not callable(target):
            raise ModelError(f"model `{spec}` is not callable")
        model = _build(spec, target, kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model `{spec}` returned {type(model).__name__}, not an `nn.Module`")
    return model


def _build(spec, factory, kwargs):
    try:
        with torch.device("meta"):
            model = factory(**kwargs)
    except BaseException as first:  # noqa: BLE001 - e.g. __init__ reads tensor values
        if isinstance(first, KeyboardInterrupt):
            raise
        try:
            model = factory(**kwargs)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ModelError(f"model `{spec}` raised {type(exc).__name__}: {exc}") from None
    if isinstance(model, torch.nn.Module):
        try:
            model = model.to("meta")
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"model `{spec}` cannot be moved to the meta device: {exc}") from None
    return model


# -- prefix remap (CKPT107) --------------------------------------------------------------


def _strip_wrappers(key: str) -> Tuple[str, Tuple[str, ...]]:
    steps = []
    changed = True
    while changed:
        changed = False
        for p in WRAPPER_PREFIXES:
            if key.startswith(p):
                key = key[len(p):]
                steps.append(p)
                changed = True
                break
    return key, tuple(steps)


class Remap:
    def __init__(self, strip_first: str = "", add: str = ""):
        self.strip_first = strip_first
        self.add = add
        self.steps: Tuple[str, ...] = ()

    def key(self, k: str) -> str:
        if self.strip_first and k.startswith(self.strip_first):
            k = k[len(self.strip_first):]
        k, _ = _strip_wrappers(k)
        return self.add + k

    def describe(self, keys) -> str:
        counts: Dict[Tuple[str, ...], int] = {}
        for k in keys:
            if self.strip_first and k.startswith(self.strip_first):
                k = k[len(self.strip_first):]
            steps = _strip_wrappers(k)[1]
            counts[steps] = counts.get(steps, 0) + 1
        steps = max(sorted(counts), key=lambda s: counts[s])
        strips = ([self.strip_first] if self.strip_first else []) + list(steps)
        parts = []
        if strips:
            parts.append("strip " + " then ".join(f"`{p}`" for p in strips))
        if self.add:
            parts.append(f"add `{self.add}`")
        self.steps = tuple(strips)
        return " and ".join(parts)


def best_remap(ck_keys: List[str], model_keys: List[str]) -> Optional[Tuple[Remap, int]]:
    expected = set(model_keys)
    baseline = sum(k in expected for k in ck_keys)
    candidates = [Remap()]
    firsts: Dict[str, int] = {}
    for k in ck_keys:
        head = _strip_wrappers(k)[0]
        if "." in k:
            first = k.split(".", 1)[0] + "."
            firsts[first] = firsts.get(first, 0) + 1
        if "." in head:
            first = head.split(".", 1)[0] + "."
            firsts[first] = firsts.get(first, 0) + 1
    for first in sorted(firsts, key=lambda f: (-firsts[f], f))[:3]:
        if first not in WRAPPER_PREFIXES:
            candidates.append(Remap(strip_first=first))
    tops = {k.split(".", 1)[0] for k in model_keys if "." in k}
    if len(tops) == 1 and all("." in k for k in model_keys):
        candidates.append(Remap(add=tops.pop() + "."))
    best, best_score = None, baseline
    for cand in candidates:
        score = sum(cand.key(k) in expected for k in ck_keys)
        if score > best_score:
            best, best_score = cand, score
    if best is None or best_score * 2 < len(ck_keys):
        return None
    return best, best_score


def _remap_metadata(meta: Optional[Dict[str, dict]], remap: Remap) -> Optional[Dict[str, dict]]:
    if meta is None:
        return None
    out: Dict[str, dict] = {}
    for k, v in meta.items():
        new = remap.key(k + ".") if k else remap.key("")
        new = new[:-1] if new.endswith(".") else new
        out.setdefault(new, v)
    return out


# -- the comparison ----------------------------------------------------------------------


def _dtype(name: Optional[str]):
    if name and name.startswith("torch."):
        value = getattr(torch, name[len("torch."):], None)
        if isinstance(value, torch.dtype):
            return value
    return None


def _keyed(rule, key: str, said: str, path: str, help: Optional[str] = None, *,
           milder: bool = False) -> Diagnostic:
    """A finding about one state-dict key: `said` with `{}` where the key goes, the key cut
    short when the headline would be too long (the help and the finding's `key` hold it whole)."""
    room = HEADLINE - len(said)
    shown = key if len(key) <= room else key[: max(room, 12) - 1] + "…"
    if shown != key:
        whole = said.replace("{}", f"`{key}`")
        help = whole[:1].upper() + whole[1:] + (f"; {help[:1].lower()}{help[1:]}" if help else "")
    return rule.finding(fit_headline(said.replace("{}", f"`{shown}`"), None)[0], path, key, milder=milder, help=help)


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def compare(model, tensors: Dict[str, TensorInfo], metadata, path: str, *, strict: bool = True,
            optimizers: Optional[List[dict]] = None) -> List[Diagnostic]:
    """The findings on the checkpoint file ``path`` whose state dict is ``tensors``."""
    out: List[Diagnostic] = []
    expected = model.state_dict(keep_vars=True)
    keys = list(tensors)
    found = best_remap(keys, list(expected))
    if found is not None:
        remap, score = found
        how = remap.describe(keys)
        prefixes = ", ".join(f"`{p}`" for p in (remap.steps or (remap.add,)))
        headline, _ = split_headline(f"{how} to make {score} of {len(keys)} keys match the model's")
        out.append(KeyPrefix.finding(headline, path, help=f"Checkpoint keys differ from the model's by the prefix "
                                     f"{prefixes}: {how} to make {score} of {len(keys)} keys match"))
        remapped: Dict[str, TensorInfo] = {}
        for k in keys:
            new = remap.key(k)
            remapped[k if new in remapped else new] = tensors[k]
        tensors = remapped
        metadata = _remap_metadata(metadata, remap)

    fake: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, t in tensors.items():
        target = expected.get(k)
        shape = t.shape
        if target is not None and shape is not None and tuple(target.shape) != tuple(shape):
            out.append(_keyed(ShapeMismatch, k, "{} has shape " + f"{_fmt_shape(shape)} in the checkpoint but "
                              f"{_fmt_shape(tuple(target.shape))} in the model", path))
            shape = tuple(target.shape)
        elif target is not None and t.dtype and _dtype(t.dtype) is not None and _dtype(t.dtype) != target.dtype:
            out.append(_keyed(DtypeMismatch, k, "{} is " + f"`{t.dtype}` in the checkpoint but `{target.dtype}` in the "
                              "model", path, "`load_state_dict` silently casts it to the model's dtype"))
        fake[k] = _meta_tensor(shape, t.dtype, target)
    if metadata is not None:
        fake._metadata = metadata  # type: ignore[attr-defined]
    missing, unexpected = _missing_unexpected(model, fake, expected)
    for k in missing:
        out.append(_keyed(MissingKeys, k, "the model's {} is missing from the checkpoint", path, milder=not strict))
    for k in unexpected:
        out.append(_keyed(UnexpectedKeys, k, "checkpoint entry {} has no slot in the model", path, milder=not strict))
    if optimizers and len(optimizers) == 1:
        out.extend(compare_optimizer(model, optimizers[0], path))
    elif optimizers:
        out.extend(compare_optimizers(model, optimizers, path))
    return out


def _meta_tensor(shape, dtype_name, target):
    dtype = _dtype(dtype_name) or (target.dtype if target is not None else torch.float32)
    try:
        return torch.empty(tuple(shape or ()), dtype=dtype, device="meta")
    except Exception:  # noqa: BLE001 - quantized dtypes have no meta empty
        return torch.empty(tuple(shape or ()), device="meta")


def _missing_unexpected(model, fake, expected) -> Tuple[List[str], List[str]]:
    try:
        with warnings.catch_warnings():
            # BatchNorm v1 inserts a real num_batches_tracked: torch warns about a no-op copy
            warnings.simplefilter("ignore")
            result = model.load_state_dict(fake, strict=False)
        return sorted(result.missing_keys), sorted(result.unexpected_keys)
    except Exception:  # noqa: BLE001 - a custom _load_from_state_dict that reads values
        return sorted(set(expected) - set(fake)), sorted(set(fake) - set(expected))


# -- optimizer (CKPT110) -----------------------------------------------------------------


def _param_ids(optimizer: dict) -> Optional[List[object]]:
    groups = optimizer.get("param_groups")
    if not isinstance(groups, list):
        return None
    ids: List[object] = []
    for g in groups:
        if isinstance(g, dict) and isinstance(g.get("params"), list):
            ids.extend(g["params"])
    return ids


def compare_optimizer(model, optimizer: dict, path: str) -> List[Diagnostic]:
    if "param_groups" not in optimizer:
        return compare_optimizer_by_name(model, optimizer["state"], path)
    params = list(model.named_parameters())
    ids = _param_ids(optimizer)
    if ids is None:
        return [OptimizerMismatch.finding("optimizer state has no readable `param_groups`", path)]
    if len(ids) != len(params):
        return [OptimizerMismatch.finding(f"the saved optimizer state covers {len(ids)} parameters but the model "
                                          f"has {len(params)}", path,
                                          help="`optimizer.load_state_dict` will fail")]
    out: List[Diagnostic] = []
    state = optimizer.get("state") if isinstance(optimizer.get("state"), dict) else {}
    for pos, pid in enumerate(ids):
        slot = state.get(pid)
        if not isinstance(slot, dict):
            continue
        name, param = params[pos]
        for sk in sorted(k for k in slot if isinstance(k, str)):
            t = slot[sk]
            if not isinstance(t, TensorInfo) or t.shape is None or len(t.shape) == 0:
                continue
            if tuple(t.shape) != tuple(param.shape):
                out.append(_keyed(OptimizerMismatch, name, f"optimizer state `{sk}` for parameter {pos} " + "({}) has "
                                  f"shape {_fmt_shape(t.shape)}, the parameter {_fmt_shape(tuple(param.shape))}", path))
                break
    return out


def compare_optimizers(model, optimizers: List[dict], path: str) -> List[Diagnostic]:
    """Several optimizers (Lightning's `optimizer_states`, e.g. a GAN's two): which parameters
    each covers is decided by the module's `configure_optimizers`, so only what holds
    whatever it returns is checked: together they cover at most the model's parameters, and
    every state tensor has the shape of some parameter."""
    params = list(model.named_parameters())
    shapes = {tuple(p.shape) for _, p in params}
    out: List[Diagnostic] = []
    total = 0
    for i, optimizer in enumerate(optimizers):
        ids = _param_ids(optimizer)
        if ids is None:
            return [OptimizerMismatch.finding(f"`optimizer_states[{i}]` has no readable `param_groups`", path)]
        total += len(ids)
        state = optimizer.get("state") if isinstance(optimizer.get("state"), dict) else {}
        for pid in ids:
            slot = state.get(pid)
            for sk in sorted(k for k in slot if isinstance(k, str)) if isinstance(slot, dict) else ():
                t = slot[sk]
                if isinstance(t, TensorInfo) and t.shape and tuple(t.shape) not in shapes:
                    out.append(OptimizerMismatch.finding(f"`optimizer_states[{i}]` state `{sk}` has shape "
                                                         f"{_fmt_shape(t.shape)}, which no parameter of the model "
                                                         "has", path))
                    break
            else:
                continue
            break
    if total > len(params):
        out.insert(0, OptimizerMismatch.finding(f"the saved optimizers cover {total} parameters but the model has "
                                                f"{len(params)}", path, help="Resuming from it will fail"))
    return out


def compare_optimizer_by_name(model, state: dict, path: str) -> List[Diagnostic]:
    """DCP's optimizer layout (`get_state_dict`): state keyed by the parameter's name."""
    params = dict(model.named_parameters())
    out: List[Diagnostic] = []
    for name in sorted(state):
        param = params.get(name)
        if param is None:
            param = params.get(_strip_wrappers(name)[0])
        slot = state[name]
        if param is None:
            out.append(_keyed(OptimizerMismatch, name, "the saved optimizer state is for {}, which the model does not "
                              "have", path, "Loading it will fail"))
            continue
        for sk in sorted(k for k in slot if isinstance(k, str)) if isinstance(slot, dict) else ():
            t = slot[sk]
            if isinstance(t, TensorInfo) and t.shape and tuple(t.shape) != tuple(param.shape):
                out.append(_keyed(OptimizerMismatch, name, f"optimizer state `{sk}` of " + "{} has shape "
                                  f"{_fmt_shape(t.shape)}, the parameter {_fmt_shape(tuple(param.shape))}", path))
                break
    return out
