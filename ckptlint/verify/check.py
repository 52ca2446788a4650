"""Orchestration of ``ckptlint verify``: the configured entries (ckptlint/entries.py), globs,
file-level findings (CKPT101/102/108/109/111, no torch needed) and the model comparison
(compare.py, torch)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ckptlint.diagnostic import MODEL_ERROR, Diagnostic, fit_headline, split_headline
from ckptlint.entries import Entry
from ckptlint.rules.ckpt101_unsafe_pickle import UnsafePickle
from ckptlint.rules.ckpt102_full_model_pickle import FullModelPickle
from ckptlint.rules.ckpt108_device_bound import DeviceBound
from ckptlint.rules.ckpt109_unreadable_checkpoint import UnreadableCheckpoint
from ckptlint.rules.ckpt111_version_skew import VersionSkew
from ckptlint.reader import dcp, source, verdict
from ckptlint.reader.reader import Checkpoint, is_shard_index, sniff
from ckptlint.reader.records import Call, PDict, TensorInfo, class_of
from ckptlint.verify import layouts
from ckptlint.verify.reads import Reads
from ckptlint.versions import parse_version

STATE_DICT_KEYS = (
    "state_dict", "model_state_dict", "model", "net", "module", "ema", "model_ema",
    "ema_state_dict", "network", "weights", "params", "generator", "student", "teacher",
    "state",
)
OPTIMIZER_KEYS = ("optimizer_state_dict", "optimizer", "optim")
VERSION_KEYS = ("torch_version", "pytorch_version", "torch", "pytorch-version", "torch-version")
MAX_WALK = 2_000_000  # objects visited when looking for tensors/modules (bombs stay bounded)

# dtypes that older torch cannot load (first torch release that has them)
DTYPE_SINCE = {
    "torch.float8_e4m3fn": (2, 1), "torch.float8_e5m2": (2, 1),
    "torch.float8_e4m3fnuz": (2, 2), "torch.float8_e5m2fnuz": (2, 2),
    "torch.uint16": (2, 3), "torch.uint32": (2, 3), "torch.uint64": (2, 3),
}


# -- orchestration -----------------------------------------------------------------------


def verify(entries, files, *, root: pathlib.Path, torch_version: Optional[str],
           safe_globals: List[str], sniff_files: bool = False,
           verbose: bool = False) -> Tuple[List[Diagnostic], List[str]]:
    """Check ``files`` on their own (a folder: the checkpoint files below it, by content;
    with ``sniff_files`` the named files too, as the pre-commit hook passes every staged
    file) and the configured ``entries`` against their models. A DCP folder (or a file of
    one) is checked as a whole, from its `.metadata`. Each file is read once (reads.py);
    files and entries may be URLs (reader/source.py). ``verbose``: a note per URL read,
    with the bytes fetched."""
    source.reset_remote()
    diags: List[Diagnostic] = []
    notes: List[str] = []
    root = pathlib.Path(root)
    skipped: Dict[str, int] = {}
    checkpoints: List[str] = []
    folders: List[str] = []
    listings: Dict[tuple, None] = {}  # (folder, its names): the folders whose layout is checked
    for f in files or ():
        path = source.abspath(f)
        if source.isdir(path):
            try:
                found, dcp_found, walked = checkpoints_under(path, skipped)
            except source.RemoteError as exc:  # a remote folder that cannot be listed
                diags.append(_unreadable(f"cannot list this folder: {exc}", path))
                continue
            if not found and not dcp_found:
                diags.append(UnreadableCheckpoint.finding(
                    "no checkpoint or pickle file in this folder (judged by content)", path))
            checkpoints += found
            folders += dcp_found
            listings.update(dict.fromkeys(walked))
        elif _in_dcp_folder(path):
            folders.append(source.dirname(path))
        else:
            reason = sniff(path) if sniff_files else None
            if reason is not None:
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            checkpoints.append(path)
    checkpoints, folders = list(dict.fromkeys(checkpoints)), list(dict.fromkeys(folders))
    if sniff_files:  # staged files: the layout of the folders they are in (missing rank files)
        for parent in dict.fromkeys(source.dirname(p) for p in checkpoints):
            listings[(parent, tuple(sorted(source.listdir(parent))))] = None
    expanded = [(entry, _expand(entry, root)) for entry in entries]
    reads = Reads()
    reads.want(checkpoints)
    reads.want(folders, "dcp")
    for _, paths in expanded:
        for p in paths:
            reads.want([p], "dcp" if dcp.is_dcp_folder(p) else "file")
    layout: Dict[tuple, None] = {}  # (where, message) of missing rank files, each said once
    for folder, names in listings:
        layout.update(dict.fromkeys(layouts.problems(folder, list(names), reads.peek)))
    # a shard index first: the shards it reads are then still kept for their own check
    for one in sorted(checkpoints, key=lambda p: not is_shard_index(p)):
        diags.extend(guarded_file_findings(reads.checkpoint(one), safe_globals, torch_version))
    diags += [_unreadable(message, where) for where, message in layout]
    for one in folders:
        diags.extend(dcp_findings(reads.folder(one), safe_globals, torch_version))
    for entry, paths in expanded:
        diags.extend(_verify_entry(entry, paths, reads, root, torch_version, safe_globals, notes))
    if skipped:
        total = sum(skipped.values())
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        notes.append(f"skipped {total} file{'s' if total != 1 else ''}: {why}")
    if verbose:
        notes += source.remote_report()
    diags.sort(key=lambda d: d.sort_key())
    return diags, notes


def _in_dcp_folder(path: str) -> bool:
    name = source.basename(path)
    return (name == dcp.METADATA or name.endswith(".distcp")) and dcp.is_dcp_folder(source.dirname(path))


def checkpoints_under(folder: str, skipped: Optional[Dict[str, int]] = None):
    """(files, DCP folders, listings) below a folder: files that hold a checkpoint or a
    pickle, judged by content, and folders holding a DCP `.metadata` (checked as a whole:
    their `.metadata` and `.distcp` files are not listed), sorted, and each folder walked
    with the names of its files (for the rank files DeepSpeed and accelerate layouts miss).
    Hidden folders (a repository's `.git`, tool caches) and virtual environments are
    skipped; ``skipped`` counts the other files by reason."""
    files, folders, listings = [], [], []
    for dirpath, dirnames, filenames in source.walk(folder):
        listings.append((dirpath, tuple(filenames)))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_FOLDERS
                             and not source.isfile(source.join(dirpath, d, "pyvenv.cfg")))
        is_dcp = dcp.METADATA in filenames
        if is_dcp:
            folders.append(dirpath)
        for name in sorted(filenames):
            if is_dcp and (name == dcp.METADATA or name.endswith(".distcp")):
                continue
            path = source.join(dirpath, name)
            reason = sniff(path)
            if reason is None:
                files.append(path)
            elif skipped is not None:
                skipped[reason] = skipped.get(reason, 0) + 1
    return sorted(files), sorted(folders), listings


def dcp_findings(folder, safe_globals, torch_version) -> List[Diagnostic]:
    """A DCP folder: its `.metadata` and shards as files, and what `.metadata` says of them."""
    out = guarded_file_findings(folder.metadata, safe_globals, torch_version)
    by_path: Dict[str, List[str]] = {}
    for path, message in folder.problems:
        by_path.setdefault(path, []).append(message)
    for path, messages in sorted(by_path.items()):
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        out.append(_unreadable(f"{messages[0]}{more}", path, "unreadable checkpoint: "))
    for shard in folder.shards:
        out.extend(guarded_file_findings(shard, safe_globals, torch_version))
    return out


SKIP_FOLDERS = {"__pycache__", "node_modules", "site-packages"}


def _expand(entry: Entry, root: pathlib.Path) -> List[str]:
    pattern = entry.path if source.isabs(entry.path) else str(root / entry.path)
    if any(c in entry.path for c in "*?["):
        return sorted(source.abspath(p) for p in source.glob(pattern)
                      if source.isfile(p) or dcp.is_dcp_folder(p))
    return [source.abspath(pattern)]


def _verify_entry(entry: Entry, paths: List[str], reads: Reads, root: pathlib.Path, torch_version, safe_globals,
                  notes) -> List[Diagnostic]:
    """The entry's files (``paths``: its pattern expanded) checked and compared with its model."""
    out: List[Diagnostic] = []
    if not paths:
        where = source.abspath(entry.path if source.isabs(entry.path) else str(root / entry.path))
        return [_unreadable(f"no file matches the pattern `{entry.path}`", where)]
    allowed = list(safe_globals) + entry.safe_globals
    model_state = None  # (model or None, error) built once per entry
    for path in paths:
        if dcp.is_dcp_folder(path):  # a DCP folder: keys, shapes and dtypes from its .metadata
            folder = reads.folder(path)
            found = dcp_findings(folder, allowed, torch_version)
            ck_root = folder.root() if folder.readable else None
        else:
            ck = reads.checkpoint(path)
            found = guarded_file_findings(ck, allowed, torch_version)
            ck_root = None if ck.pickle_error is not None or ck.unverified else ck.root
        out.extend(found)
        if entry.model is None or any(d.code in (UnreadableCheckpoint.code, FullModelPickle.code)
                                      for d in found):
            continue
        if ck_root is None:
            continue
        picked = find_state_dict(ck_root, entry.key)
        if picked.error:
            out.append(_unreadable(picked.error, path, key=entry.key))
            continue
        if picked.module_at is not None:
            # find_module looks one dict level down; a `key` can point deeper
            at = f" at `{picked.module_at}`" if picked.module_at else ""
            out.append(FullModelPickle.finding(
                f"holds a pickled `nn.Module`{_clip(at, 60)}, not a state dict", path,
                key=picked.module_at or None,
                help=f"It holds a pickled `nn.Module`{at}: it loads only with `weights_only=False` and the exact "
                     "same class code; save `model.state_dict()` instead"))
            continue
        if picked.auto_key:
            notes.append(f"{path}: auto-detected state dict key `{picked.auto_key}`")
        if model_state is None:
            model_state = _build(entry, root)
        model, error = model_state
        if error:
            continue
        from ckptlint.verify import compare  # imports torch

        metadata = _metadata_of(picked.container)
        opt = find_optimizer(ck_root)
        try:
            findings = compare.compare(model, picked.tensors, metadata, path, strict=entry.strict,
                                       optimizers=opt)
        except Exception as exc:  # noqa: BLE001 - user model code runs here (state_dict hooks ...)
            out.append(model_error(f"comparing with model `{entry.model}` failed: {type(exc).__name__}: {exc}",
                                   path))
            continue
        out.extend(findings)
    if model_state is not None and model_state[1]:
        cfg = entry.config_file or str(root / "pyproject.toml")
        out.append(model_error(model_state[1], source.abspath(cfg)))
    return out


def _build(entry: Entry, root: pathlib.Path):
    try:
        from ckptlint.verify import compare
    except ImportError as exc:  # torch missing
        return None, (f"model `{entry.model}` needs torch to compare keys and shapes "
                      f"(the `runtime` extra; in a clone of ckptlint: pip install '.[runtime]'): {exc}")
    try:
        return compare.load_model(entry.model, entry.kwargs, root), None
    except compare.ModelError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. a module __getattr__ that raises
        return None, f"model `{entry.model}` could not be built: {type(exc).__name__}: {exc}"


def model_error(message: str, filename: str) -> Diagnostic:
    """E910: a configured model that cannot be built or compared with (no rule: the entry
    could not be checked, as an E9xx file could not)."""
    message, help = fit_headline(message, None)
    return Diagnostic(code=MODEL_ERROR[0], name=MODEL_ERROR[1], message=message, filename=filename,
                      is_runtime=True, help=help)


def _unreadable(problem: str, path: str, prefix: str = "", key: Optional[str] = None) -> Diagnostic:
    """CKPT109 for a problem the reader or a layout check put in words: its lead as the
    headline, the whole as the help when it does not fit."""
    headline, help = split_headline(problem, prefix)
    return UnreadableCheckpoint.finding(headline, path, key=key, help=help)


def _clip(text: str, limit: int) -> str:
    """A backticked name cut to `limit` characters (the help and `key` hold it whole)."""
    return text if len(text) <= limit else text[: limit - 2] + "…`"


def _clip_key(key: str, limit: int = 40) -> str:
    return key if len(key) <= limit else key[: limit - 1] + "…"


# -- file-level findings (no torch) -------------------------------------------------------


def guarded_file_findings(ck: Checkpoint, safe_globals, torch_version) -> List[Diagnostic]:
    """file_findings, but a bug of ours on a strange file is a finding, never a crash, and
    never a silent pass for a pickle (fail closed)."""
    try:
        return file_findings(ck, safe_globals, torch_version)
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
        out = [_unreadable(f"ckptlint could not check this file (internal error: {why})", ck.path)]
        if ck.format in ("zip", "archives", "legacy", "pickle", "tar", "pt2", "compressed") or ck.pickles:
            out.append(UnsafePickle.finding(
                f"cannot prove it safe: {verdict.MAY_RUN_CODE}", ck.path,
                help="The check stopped with an internal error; please report it"))
        return out


def file_findings(ck: Checkpoint, safe_globals, torch_version) -> List[Diagnostic]:
    if ck.format == "sharded":
        return _sharded_findings(ck, safe_globals, torch_version)
    path = ck.path
    if ck.not_checkpoint and not ck.pickles:
        return [_unreadable(ck.not_checkpoint, path, "unreadable checkpoint: ")]
    out: List[Diagnostic] = []
    unsafe = verdict.unsafe_pickle(ck, safe_globals)
    if unsafe is not None:
        headline, help, data_only = unsafe
        out.append(UnsafePickle.finding(headline, path, milder=data_only, help=help))
    if ck.pickle_error is not None:
        first = f"{ck.problems[0]}; " if ck.problems else ""  # e.g. the CRC mismatch behind it
        out.append(_unreadable(f"{first}a pickle cannot be parsed ({ck.pickle_error})", path,
                               "unreadable checkpoint: "))
        return out
    if ck.problems:
        more = f" (and {len(ck.problems) - 1} more)" if len(ck.problems) > 1 else ""
        out.append(_unreadable(f"{ck.problems[0]}{more}", path, "unreadable checkpoint: "))
        return out
    if ck.format == "dcp-metadata":  # names, shapes and byte ranges: checked by dcp.py
        return out
    for item_root in [ck.root] + ck.items:
        module = find_module(item_root)
        if module is not None:
            where, cls = module
            at = f" at `{where}`" if where else ""
            room = 100 - len("holds a pickled `nn.Module` (``), not a state dict") - min(len(at), 30)
            shown = cls if len(cls) <= room else "…" + cls[len(cls) - room + 1:]
            out.append(FullModelPickle.finding(
                f"holds a pickled `nn.Module` (`{shown}`){_clip(at, 30)}, not a state dict",
                path, key=where,
                help=f"It holds a pickled `nn.Module` (`{cls}`){at}: it loads only with `weights_only=False` and "
                     "the exact same class code; save `model.state_dict()` instead"))
            break
    out.extend(_device_findings(ck))
    out.extend(_version_findings(ck, torch_version))
    return out


def _sharded_findings(ck: Checkpoint, safe_globals, torch_version) -> List[Diagnostic]:
    if ck.not_checkpoint:
        return [_unreadable(ck.not_checkpoint, ck.path, "unreadable checkpoint index: ")]
    out: List[Diagnostic] = []
    for shard in ck.shards:
        if shard.not_checkpoint == "file does not exist":
            out.append(_unreadable(
                f"shard `{source.basename(shard.path)}` named in `{source.basename(ck.path)}` does not exist",
                shard.path))
        else:
            out.extend(file_findings(shard, safe_globals, None))
    out.extend(_version_findings(ck, torch_version))
    return out


def _device_findings(ck: Checkpoint) -> List[Diagnostic]:
    devices: Dict[str, List[str]] = {}
    for key, t in iter_tensors([ck.root] + ck.items if ck.items else ck.root):
        if t.device not in ("cpu", "meta"):
            devices.setdefault(t.device, []).append(key)
    for st in ck.storages.values():  # storages not reachable as named tensors
        if st.device not in ("cpu", "meta"):
            devices.setdefault(st.device, [])
    if not devices:
        return []
    names = sorted(devices)
    keys = sorted(k for d in names for k in devices[d])
    example = f", e.g. `{keys[0]}`" if keys else ""
    shown = verdict.backticked(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
    return [DeviceBound.finding(
        f"storages saved on {shown} ({len(keys)} tensors): fails to load on a host without it",
        ck.path, key=keys[0] if keys else None,
        help=f"Storages saved on {verdict.backticked(names)} ({len(keys)} tensors{example}): `torch.load` without "
             "`map_location` fails on a host without that device; load with `map_location=\"cpu\"`")]


def _version_findings(ck: Checkpoint, torch_version) -> List[Diagnostic]:
    floor = parse_version(str(torch_version)) if torch_version else None
    if floor is None:
        return []
    out = []
    written = None
    sources = [ck.metadata] + ([ck.root] if isinstance(ck.root, dict) else [])
    for src in sources:
        for k in VERSION_KEYS:
            if isinstance(src.get(k), str) and parse_version(str(src[k])):
                written = src[k]
                break
        if written:
            break
    by = f" (written by torch {written})" if written else ""
    if written and parse_version(str(written))[:2] > floor[:2]:
        out.append(VersionSkew.finding(
            f"written by torch {written}, newer than the oldest supported torch {torch_version}", ck.path,
            help=f"The checkpoint records torch {written}, newer than the oldest supported torch "
                 f"{torch_version}: it may not load there"))
    if ck.format == "zip" and floor < (1, 6):
        out.append(VersionSkew.finding(
            f"the zip checkpoint format needs torch>=1.6, the project supports torch {torch_version}", ck.path,
            help=f"The zip checkpoint format needs torch>=1.6, the project supports torch {torch_version}{by}; "
                 "save with `_use_new_zipfile_serialization=False` for older torch"))
    newest: Dict[str, Tuple[int, int]] = {}
    for key, t in iter_tensors(ck.root):
        since = DTYPE_SINCE.get(t.dtype or "")
        if since and since > floor[:2] and t.dtype not in newest:
            newest[t.dtype] = since
            out.append(VersionSkew.finding(
                f"`{_clip_key(key)}` is `{t.dtype}`, which torch before {since[0]}.{since[1]} cannot load",
                ck.path, key=key,
                help=f"`{key}` is `{t.dtype}`, which torch before {since[0]}.{since[1]} cannot load; the project "
                     f"supports torch {torch_version}{by}"))
    return out


# -- walking the inert object tree --------------------------------------------------------


def iter_tensors(root, limit: int = MAX_WALK):
    """(dotted key, TensorInfo) for tensors reachable through dicts/lists, bounded."""
    seen = set()
    stack = [("", root)]
    visited = 0
    while stack and visited < limit:
        prefix, obj = stack.pop()
        visited += 1
        if isinstance(obj, TensorInfo):
            yield prefix, obj
            continue
        if id(obj) in seen or not isinstance(obj, (dict, list, tuple, Call)):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            children = [(str(k), v) for k, v in obj.items()]
        elif isinstance(obj, Call):
            children = [(f"{i}", v) for i, v in enumerate(obj.args)]
            if isinstance(obj.state, dict):
                children += [(str(k), v) for k, v in obj.state.items()]
        else:
            children = [(str(i), v) for i, v in enumerate(obj)]
        for k, v in reversed(children):
            stack.append((f"{prefix}.{k}" if prefix else k, v))


def is_module(obj) -> bool:
    cls = class_of(obj)
    if cls is None:
        return False
    if cls.startswith("torch.nn.modules.") or cls.startswith("torch.nn.parallel."):
        return True
    state = obj.state
    if isinstance(state, tuple) and state and isinstance(state[0], dict):
        state = state[0]
    return isinstance(state, dict) and "_modules" in state and "_parameters" in state


def find_module(root) -> Optional[Tuple[Optional[str], str]]:
    """(where, class) of a pickled nn.Module at the top level or one dict level down."""
    if is_module(root):
        return None, class_of(root) or "?"
    if isinstance(root, dict):
        for k in sorted(root, key=str):
            if is_module(root[k]):
                return str(k), class_of(root[k]) or "?"
    return None


def tensor_map(obj) -> Optional[Dict[str, TensorInfo]]:
    if not isinstance(obj, dict) or not obj:
        return None
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorInfo)}
    if not tensors or len(tensors) * 2 < len(obj):
        return None
    return tensors


@dataclass
class Picked:
    tensors: Dict[str, TensorInfo] = field(default_factory=dict)
    container: Any = None
    auto_key: Optional[str] = None
    module_at: Optional[str] = None
    error: Optional[str] = None


def _top_keys(root) -> str:
    if isinstance(root, TensorInfo):
        return "the checkpoint is a single tensor"
    if isinstance(root, list):
        return "the checkpoint is a list"
    if isinstance(root, Call):
        return f"the checkpoint is a `{class_of(root) or 'object'}` object"
    if not isinstance(root, dict):
        return f"the checkpoint is a {type(root).__name__}, not a dict"
    keys = [str(k) for k in list(root)[:12]]
    return "top-level keys: " + ", ".join(f"`{k}`" for k in keys)


def find_state_dict(root, key: Optional[str]) -> Picked:
    if key is not None:
        node = root
        for part in ([key] if isinstance(root, dict) and key in root else key.split(".")):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return Picked(error=f"key `{key}` not found in the checkpoint ({_top_keys(root)})")
        if is_module(node):
            return Picked(module_at=key)
        tensors = tensor_map(node)
        if tensors is None:
            return Picked(error=f"`{key}` does not hold a state dict of tensors")
        return Picked(tensors, node)
    tensors = tensor_map(root)
    if tensors is not None:
        return Picked(tensors, root)
    if is_module(root):
        return Picked(module_at="")
    if isinstance(root, dict):
        # one level down (`model_state_dict`), then two (`model.state_dict`), known names first
        for k in _candidates(root):
            if is_module(root[k]):
                return Picked(module_at=k)
            tensors = tensor_map(root[k])
            if tensors is not None:
                return Picked(tensors, root[k], auto_key=k)
        for k in _candidates(root):
            inner = root[k]
            if isinstance(inner, dict):
                for k2 in _candidates(inner):
                    tensors = tensor_map(inner[k2])
                    if tensors is not None:
                        return Picked(tensors, inner[k2], auto_key=f"{k}.{k2}")
    return Picked(error=f"no state dict found in the checkpoint ({_top_keys(root)}); set `key`")


def _candidates(d: dict) -> List[str]:
    known = [k for k in STATE_DICT_KEYS if k in d]
    return known + sorted(k for k in d if isinstance(k, str) and k not in known)


def _metadata_of(container) -> Optional[Dict[str, dict]]:
    if isinstance(container, PDict):
        meta = container.attrs.get("_metadata")
        if isinstance(meta, dict):
            return {str(k): dict(v) for k, v in meta.items() if isinstance(v, dict)}
    return None


def find_optimizer(root) -> Optional[List[dict]]:
    """The saved optimizer states: one beside the state dict (`optimizer_state_dict`, ...),
    or Lightning's `optimizer_states` list, one per optimizer."""
    if not isinstance(root, dict):
        return None
    for k in OPTIMIZER_KEYS:
        value = root.get(k)
        if _is_optimizer_state(value):
            return [value]
    states = root.get("optimizer_states")
    if isinstance(states, list) and states and all(_is_optimizer_state(v) for v in states):
        return list(states)
    for k in ("optim", "optimizer"):  # DCP's layout (get_state_dict): state keyed by parameter name
        value = root.get(k)
        state = value.get("state") if isinstance(value, dict) else None
        if isinstance(state, dict) and state and all(isinstance(name, str) for name in state):
            return [{"state": state}]
    return None


def _is_optimizer_state(value) -> bool:
    return isinstance(value, dict) and "param_groups" in value and "state" in value
