"""A torch-free checkpoint reader that sees every pickle a loader could run.

The reading model: a file is judged by its content, never its name, with each loader's own
precedence, and every reading a loader could make is judged (the worst verdict wins):

- ``torch.load``: a zip (first bytes ``PK\x03\x04``: checkpoint, TorchScript, `.pt2`,
  several archives laid end to end; ``zipread.py``), else the torch<0.4 tar format, else a
  stream of pickles (torch's legacy format or a raw pickle; ``streams.py``). It never
  decompresses.
- ``joblib.load`` and ``pickle.load(gzip.open(...))``: compressed content by its magic bytes,
  decoded as they decode it (``compression.py``), then read again as a file of its own.
- ``pickle.load``: a stream of pickles, whatever else the file looks like: a file that
  starts like a compressed stream or a safetensors header is read as a pickle too.
- safetensors loaders: the JSON header (``safetensors_file.py``); they run no code.

The first of these readings that succeeds says what the file is (its format and object
tree); the other readings add the pickles they find, when those name anything. Pickles
that load nested content (``torch.storage._load_from_bytes(b"...")``, ``pickle.loads``)
have it read as a file of its own and judged by what it holds. Nested and compressed
content is bounded by depth and bytes (``checkpoint.Budget``): past the budget the file is
said to be unchecked, never passed.

Pickles are parsed by :mod:`ckptlint.reader.pickle_scan` (never unpickled), tensor bytes
are never read, and a bad file never raises: integrity faults go to ``Checkpoint.problems``
(CKPT109), a pickle that cannot be parsed to ``Pickle.error`` (fail closed: CKPT101 +
CKPT109). Hugging Face ``*.index.json`` sharded checkpoints are read shard by shard.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import BinaryIO, List, Optional

from ckptlint.reader import compression, source, zipdir
from ckptlint.reader.checkpoint import MAX_PICKLE_BYTES, Checkpoint, Context, Pickle
from ckptlint.reader.inert_machine import NESTED_LOADERS
from ckptlint.reader.opcodes import OPCODES
from ckptlint.reader.pickle_scan import ScanResult, scan
from ckptlint.reader.records import PDict, PickleScanError
from ckptlint.reader.safetensors_file import looks_like_safetensors, read_safetensors
from ckptlint.reader.sniff import sniff
from ckptlint.reader.streams import read_pickle_stream, read_tar, torch_tar
from ckptlint.reader.torch_tables import WEIGHTS_ONLY_OPCODES
from ckptlint.reader.zipread import read_zip

__all__ = ["Checkpoint", "Pickle", "is_shard_index", "read_checkpoint", "sniff"]

MAX_INDEX_BYTES = 100 << 20
AS_PICKLE = "the file read as a pickle"
TRUNCATED = "pickle data was truncated"


def read_checkpoint(path, data_crc: bool = False, ranges=None, read_shard=None) -> Checkpoint:
    """Read a checkpoint file, every pickle a loader could open in it. With ``ranges``
    (``(offset, length, label)``), read only those byte ranges, each as a file of its own:
    a DCP shard, whose `.metadata` names every range DCP opens. ``read_shard(path)`` reads
    the shards a Hugging Face index names (default: read_checkpoint), so a caller that also
    reads them as files of their own reads each once; the shard is not changed."""
    path = source.abspath(path)
    ck = Checkpoint(path)
    ctx = Context(data_crc, read_nested=_read_nested, scan_into=_scan_into)
    try:
        if ranges is None:
            _read(ck, ctx, read_shard or (lambda shard: read_checkpoint(shard, data_crc)))
        else:
            ck.format = "archives"
            _read_ranges(ck, ranges, ctx)
    except MemoryError:
        ck.failure = "ran out of memory while parsing"
    except RecursionError:
        ck.failure = "nesting too deep"
    except source.RemoteError as exc:  # a network fault: what was read before it does not count
        ck = Checkpoint(path, not_checkpoint=str(exc))
    except OSError as exc:
        ck.not_checkpoint = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - never crash on a file; never fail open
        reason = f"reader failure ({type(exc).__name__}: {exc})"
        if ck.format in ("zip", "archives", "legacy", "pickle", "tar", "pt2") or ck.pickles:
            ck.failure = reason  # some pickle may not have been checked: CKPT101 + CKPT109
        else:
            ck.problems.append(reason)
    return ck


def _read(ck: Checkpoint, ctx: Context, read_shard) -> None:
    try:
        st = source.stat(ck.path)
    except (FileNotFoundError, NotADirectoryError):
        ck.not_checkpoint = "file does not exist"
        return
    if st.is_dir:
        ck.not_checkpoint = "is a directory, not a checkpoint file"
        return
    size = st.size
    if is_shard_index(ck.path):
        _read_sharded(ck, read_shard)
        return
    if size == 0:
        ck.not_checkpoint = "empty file"
        return
    with source.open_file(ck.path) as f:
        read_stream(ck, f, size, ctx)


def _read_ranges(ck: Checkpoint, ranges, ctx: Context) -> None:
    with source.open_file(ck.path) as f:
        for offset, length, label in ranges:
            if length > MAX_PICKLE_BYTES:
                ck.pickles.append(Pickle(label, error="larger than the 1 GiB parsing limit"))
                continue
            f.seek(offset)
            part = Checkpoint(ck.path)
            data = f.read(length)
            read_stream(part, io.BytesIO(data), len(data), ctx)
            ck.pickles.extend(replace(p, where=f"{label}: {p.where}", item=True) for p in part.pickles)
            ck.problems.extend(f"{label}: {problem}" for problem in part.problems)
            if part.not_checkpoint:
                ck.problems.append(f"{label}: {part.not_checkpoint}")
            ck.torchscript = ck.torchscript or part.torchscript
            ck.unverified = ck.unverified or part.unverified


# -- which loader reads what ------------------------------------------------------------


def read_stream(ck: Checkpoint, f: BinaryIO, size: int, ctx: Context) -> None:
    """Every reading of the bytes of ``f`` (``size`` long) a loader could make, in the
    loaders' precedence (see the module docstring)."""
    f.seek(0)
    head = f.read(512)
    if head.startswith(zipdir.LOCAL_SIG):  # torch.load's own test; no other loader reads a zip
        read_zip(ck, f, size, ctx)
        return
    if head.startswith(b"version https://git-lfs"):
        ck.not_checkpoint = "a git-LFS pointer file, not the checkpoint (run `git lfs pull`)"
        return
    why_not: List[str] = []  # what each reading that failed said, for a file none reads
    taken = _read_compressed(ck, f, head, ctx, why_not)
    if not taken and looks_like_safetensors(head, size):
        view = Checkpoint(ck.path)
        read_safetensors(view, f, size)
        if view.not_checkpoint is None:
            _adopt(ck, view, "")
            taken = True
        else:
            why_not.append(view.not_checkpoint)
    if not taken and _looks_like_html(head):
        ck.not_checkpoint = "an HTML page, not a checkpoint (a failed download?)"
        return
    if not taken:
        tar = torch_tar(f)
        if tar is not None:
            read_tar(ck, f, tar, ctx)
            taken = True
    if taken:  # pickle.load reads any file: what it would run counts too
        if head[:1] in OPCODES:
            view = Checkpoint(ck.path)
            read_pickle_stream(view, f, head, size, ctx, quiet=True)
            _add_pickles(ck, view, "" if ck.format == "tar" else f" ({AS_PICKLE})")
        return
    if ck.path.endswith(".safetensors") and not why_not:
        why_not.append("bad safetensors header")
    read_pickle_stream(ck, f, head, size, ctx, quiet=False)
    if ck.not_checkpoint and why_not and not ck.pickles:
        ck.not_checkpoint = "; ".join(why_not)


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip()[:1] == b"<" and b"<html" in head.lower() or head.lstrip().lower().startswith(b"<!doctype")


def _read_compressed(ck: Checkpoint, f: BinaryIO, head: bytes, ctx: Context, why_not: List[str]) -> bool:
    """The content of a compressed file, as joblib and Python's openers decode it, read as a
    file of its own (each alternative a loader reads). True when some codec decoded it."""
    for codec in compression.codecs_of(head):
        inner_ctx = ctx.deeper()
        if inner_ctx is None:
            ck.unverified = f"{codec}-compressed content nested too deep to check"
            return True
        try:
            out = compression.decompress(f, codec, ctx.budget.limit())
        except compression.CodecMissing as exc:
            ck.format = "compressed"
            ck.unverified = str(exc)
            return True
        except compression.NotCompressed as exc:
            why_not.append(f"{codec}-compressed, but it does not decompress ({exc})")
            continue
        ctx.budget.spend(out.size)
        for i, (label, start, end) in enumerate(out.alternatives()):
            view = Checkpoint(ck.path)
            if (start, end) == (0, out.size):
                content = out.file()
            else:
                content = io.BytesIO(out.read(start, end))
            if end > start:
                read_stream(view, content, end - start, inner_ctx)
            else:
                view.not_checkpoint = "empty"
            suffix = f" ({codec}-compressed{', ' + label if label else ''})"
            if i == 0:  # content cut at the budget: a pickle running past it is unchecked, not corrupt
                _adopt(ck, view, suffix, prefix=f"{codec}-compressed: ", cut=out.over_limit)
            else:  # a loader that stops early sees a cut pickle: it ran what came before
                _add_pickles(ck, view, suffix, cut=True)
        if out.error is not None:
            if out.over_limit:
                ck.unverified = f"{codec}-compressed content {out.error}: the rest is not checked"
            else:
                ck.problems.append(f"{codec}-compressed stream: {out.error}")
        return True
    return False


def _adopt(ck: Checkpoint, view: Checkpoint, suffix: str, prefix: str = "", cut: bool = False) -> None:
    """``view`` (a reading of the whole file, or of its content) is what the file is;
    ``cut``: the content was cut short by the reader (the caller says so)."""
    for name in ("format", "root", "storages", "items", "crc_failed", "torchscript", "records",
                 "archive_version", "metadata", "failure", "runs_code"):
        setattr(ck, name, getattr(view, name))
    ck.problems.extend(prefix + p for p in view.problems)
    ck.not_checkpoint = f"{prefix}{view.not_checkpoint}" if view.not_checkpoint else None
    ck.unverified = ck.unverified or view.unverified
    ck.pickles.extend(replace(p, where=p.where + suffix, error=None if cut and p.error == TRUNCATED else p.error)
                      for p in view.pickles)


def _add_pickles(ck: Checkpoint, view: Checkpoint, suffix: str, cut: bool = False) -> None:
    """The pickles another reading finds, when they name anything (a reading that fails
    before naming anything ran nothing). ``cut``: the reading is a prefix of content read
    whole elsewhere, so a pickle that runs past its end is judged by what it named."""
    for p in view.pickles:
        if p.globals:
            error = None if cut and p.error == TRUNCATED else p.error
            ck.pickles.append(replace(p, where=p.where + suffix, error=error))
    if any(p.globals for p in view.pickles):
        ck.unverified = ck.unverified or view.unverified


# -- one pickle, and what it loads nested ------------------------------------------------


def _scan_into(ck: Checkpoint, where: str, data, ctx: Context, quiet: bool = False, start: int = 0,
               weights_only: bool = False, reuse: Optional[ScanResult] = None) -> Optional[ScanResult]:
    """Scan one pickle into ``ck.pickles``. A failure is recorded (fail closed) unless
    ``quiet`` and it named nothing: bytes that are not a pickle at all. Then every nested
    load it makes is read (``_read_nested``)."""
    if reuse is not None:
        result = reuse
    else:
        try:
            result = scan(data, MAX_PICKLE_BYTES, start)
        except PickleScanError as exc:
            names = list(getattr(exc, "globals", []))
            if quiet and not names:
                return None
            p = Pickle(where, names, dict(getattr(exc, "uses", {})), str(exc), bool(getattr(exc, "straddled", False)),
                       refused_ops=frozenset(getattr(exc, "ops", ())) - WEIGHTS_ONLY_OPCODES, weights_only=weights_only)
            ck.pickles.append(p)
            _nested(ck, p, list(getattr(exc, "nested", [])), ctx)
            return None
    p = Pickle(where, result.globals, result.uses, None, result.straddled, implied=result.implied,
               refused_ops=result.ops - WEIGHTS_ONLY_OPCODES, weights_only=weights_only)
    ck.pickles.append(p)
    ck.problems.extend(f"{where}: {fault}: torch refuses it" for fault in result.faults)
    _nested(ck, p, result.nested, ctx)
    return result


def _nested(ck: Checkpoint, p: Pickle, loads, ctx: Context) -> None:
    """Read what a pickle's nested loads would load; the loader globals whose every call
    loads literal bytes that were read become ``p.unwrapped`` (judged by what they load)."""
    if not loads:
        return
    proven = {q for q, _ in loads}
    seen = {}
    for q, blob in loads:
        if blob is None:  # computed at load time: what it loads is unknown
            proven.discard(q)
            continue
        if id(blob) in seen:
            continue
        seen[id(blob)] = blob
        label = f"{p.where}: nested {'archive' if q == 'torch.storage._load_from_bytes' else 'pickle'} {len(seen)}"
        if not _read_nested(ck, label, blob, NESTED_LOADERS[q], ctx):
            proven.discard(q)
    p.unwrapped = frozenset(proven)


def _read_nested(ck: Checkpoint, label: str, blob: bytes, loader: str, ctx: Context) -> bool:
    """Read ``blob`` (what ``loader`` opens) as a file of its own and add its pickles and
    faults to ``ck``. False when it was not read (over the depth or size budget)."""
    inner = ctx.deeper()
    if inner is None or len(blob) > ctx.budget.limit():
        ck.unverified = ck.unverified or f"nested content beyond the reading budget is not checked ({label})"
        return False
    ctx.budget.spend(len(blob))
    view = Checkpoint(ck.path)
    if blob:
        read_stream(view, io.BytesIO(blob), len(blob), inner)
    else:
        view.not_checkpoint = "empty"
    suffix = f" (in {label}, loaded by `{loader}`)"
    ck.pickles.extend(replace(p, where=p.where + suffix, weights_only=False) for p in view.pickles)
    ck.problems.extend(f"{label}: {problem}" for problem in view.problems)
    if view.not_checkpoint:
        ck.problems.append(f"{label} is not readable: {view.not_checkpoint}")
    ck.unverified = ck.unverified or view.unverified
    ck.runs_code = ck.runs_code or view.runs_code
    if view.failure:
        ck.failure = ck.failure or f"{view.failure} ({label})"
    return True


# -- Hugging Face sharded checkpoints ----------------------------------------------------


def is_shard_index(path: str) -> bool:
    """A Hugging Face `*.index.json`: read with the shards it names."""
    return path.endswith(".index.json")


def _read_sharded(ck: Checkpoint, read_shard) -> None:
    import json

    ck.format = "sharded"
    try:
        with source.open_file(ck.path) as f:
            index = json.loads(f.read(MAX_INDEX_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ck.not_checkpoint = "not a valid JSON shard index"
        return
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        ck.not_checkpoint = "shard index without a `weight_map`"
        return
    if isinstance(index.get("metadata"), dict):
        ck.metadata = index["metadata"]
    base = source.dirname(ck.path)
    root = PDict()
    for shard_name in sorted(set(weight_map.values())):
        shard = read_shard(source.join(base, shard_name))
        if shard.readable:
            tensors = shard.root if isinstance(shard.root, dict) else {}
            absent = []
            for key in sorted(k for k, v in weight_map.items() if v == shard_name):
                if key in tensors:
                    root[key] = tensors[key]
                else:
                    absent.append(f"index names `{key}` but the shard does not contain it")
            if absent:  # what the index says of the shard: the shard as read stays as it is
                shard = replace(shard, problems=shard.problems + absent)
        ck.shards.append(shard)
    ck.root = root

