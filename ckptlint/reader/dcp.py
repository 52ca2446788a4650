"""``torch.distributed.checkpoint`` (DCP) folders: ``.metadata`` plus ``__{rank}_{n}.distcp``.

DCP reads ``.metadata`` with plain ``pickle.load``; it lists every key with its global
shape, dtype and chunks, and, for every chunk or bytes item, the shard file and byte range
that holds it. Loading then opens each range on its own: tensors with
``torch.load(weights_only=True)``, bytes items (``step``, RNG states, any object) with
``torch.load(weights_only=False)``, which runs whatever they hold.

So a folder is checked from its metadata, read by the inert reader (never unpickled): every
shard it names exists and is long enough, the chunks of each tensor tile its shape without
gaps or overlaps, every chunk and bytes item has its byte range, and every shard is read
with the byte ranges of its bytes items scanned as files of their own. Nothing here imports
torch; tensor bytes are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ckptlint.reader import source
from ckptlint.reader.reader import Checkpoint, read_checkpoint
from ckptlint.reader.records import Call, Global, PDict, TensorInfo, class_of

METADATA = ".metadata"
_DCP = "torch.distributed.checkpoint."


@dataclass
class Range:
    fqn: str
    offsets: Optional[Tuple[int, ...]]  # the chunk's offsets; None for a bytes item
    file: str  # relative to the folder, as `.metadata` names it
    offset: int
    length: int


@dataclass
class Folder:
    path: str
    metadata: Checkpoint
    tensors: Dict[str, TensorInfo] = field(default_factory=dict)  # global shape and dtype
    chunks: Dict[str, List[Tuple[Tuple[int, ...], Tuple[int, ...]]]] = field(default_factory=dict)
    byte_items: List[str] = field(default_factory=list)
    ranges: List[Range] = field(default_factory=list)
    paths: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # key -> nested path (planner_data)
    problems: List[Tuple[str, str]] = field(default_factory=list)  # (file, message): CKPT109
    shards: List[Checkpoint] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.metadata.readable and self.metadata.format == "dcp-metadata"

    def root(self) -> PDict:
        """The checkpoint's keys nested as the saved state dict was (``{"model": {...}}``),
        from ``planner_data``, with each tensor's global shape and dtype."""
        root = PDict()
        for key in sorted(self.tensors):
            node = root
            path = self.paths.get(key) or (key,)
            for part in path[:-1]:
                child = node.get(part)
                if not isinstance(child, PDict):
                    child = node[part] = PDict()
                node = child
            node[path[-1]] = self.tensors[key]
        return root


def is_dcp_folder(path: str) -> bool:
    return source.isdir(path) and source.isfile(source.join(path, METADATA))


def read_folder(path: str) -> Folder:
    path = source.abspath(path)
    folder = Folder(path, read_checkpoint(source.join(path, METADATA)))
    meta = folder.metadata
    if class_of(meta.root) != _DCP + "metadata.Metadata":
        if meta.readable:
            folder.problems.append((meta.path, "`.metadata` is not torch.distributed.checkpoint metadata"))
        return folder
    fields = _fields(meta.root)
    _read_keys(folder, fields.get("state_dict_metadata"))
    _read_storage(folder, fields.get("storage_data"))
    planner = fields.get("planner_data")
    if isinstance(planner, dict):
        folder.paths = {k: tuple(v) for k, v in planner.items()
                        if isinstance(k, str) and isinstance(v, tuple) and v and all(isinstance(p, str) for p in v)}
    _check_tiling(folder)
    _check_ranges(folder)
    return folder


def _fields(obj) -> Dict[str, Any]:
    """A dataclass record's fields (its BUILD state), or {}."""
    state = obj.state if isinstance(obj, Call) else None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):  # (dict, slots)
        state = {**(state[0] or {}), **state[1]}
    return state if isinstance(state, dict) else {}


def _ints(value) -> Optional[Tuple[int, ...]]:
    if isinstance(value, (tuple, list)) and all(type(v) is int for v in value):
        return tuple(value)
    return None


def _read_keys(folder: Folder, sdm) -> None:
    if not isinstance(sdm, dict):
        folder.problems.append((folder.metadata.path, "`.metadata` lists no keys (`state_dict_metadata`)"))
        return
    for fqn, md in sdm.items():
        if not isinstance(fqn, str):
            continue
        cls = class_of(md)
        if cls == _DCP + "metadata.BytesStorageMetadata":
            folder.byte_items.append(fqn)
            continue
        f = _fields(md)
        shape = _ints(f.get("size"))
        props = f.get("properties")
        state = props.state if isinstance(props, Call) else None
        dtype = state[0] if isinstance(state, tuple) and state else _fields(props).get("dtype")
        dtype = dtype.qualname if isinstance(dtype, Global) else None
        if cls != _DCP + "metadata.TensorStorageMetadata" or shape is None:
            folder.problems.append((folder.metadata.path, f"`.metadata` entry `{fqn}` is not a tensor or bytes item"))
            continue
        folder.tensors[fqn] = TensorInfo(dtype, shape, "cpu", None)
        chunks = []
        for chunk in f.get("chunks") or ():
            cf = _fields(chunk)
            offsets, sizes = _ints(cf.get("offsets")), _ints(cf.get("sizes"))
            if offsets is None or sizes is None:
                folder.problems.append((folder.metadata.path, f"`.metadata`: an unreadable chunk of `{fqn}`"))
                continue
            chunks.append((offsets, sizes))
        folder.chunks[fqn] = chunks


def _read_storage(folder: Folder, storage) -> None:
    if not isinstance(storage, dict):
        folder.problems.append((folder.metadata.path, "`.metadata` names no byte ranges (`storage_data`)"))
        return
    for index, info in storage.items():
        fi, fs = _fields(index), _fields(info)
        fqn, file = fi.get("fqn"), fs.get("relative_path")
        offset, length = fs.get("offset"), fs.get("length")
        if not (isinstance(fqn, str) and isinstance(file, str) and type(offset) is int and type(length) is int
                and offset >= 0 and length >= 0):
            folder.problems.append((folder.metadata.path, "`.metadata`: an unreadable byte range entry"))
            continue
        folder.ranges.append(Range(fqn, _ints(fi.get("offset")), file, offset, length))


def _check_tiling(folder: Folder) -> None:
    """Each tensor's chunks lie inside its shape, do not overlap, and cover it all."""
    where = folder.metadata.path
    for fqn, chunks in sorted(folder.chunks.items()):
        shape = folder.tensors[fqn].shape or ()
        total = _volume(shape)
        covered = 0
        for offsets, sizes in chunks:
            if len(offsets) != len(shape) or len(sizes) != len(shape) or any(
                    o < 0 or o + n > d for o, n, d in zip(offsets, sizes, shape)):
                folder.problems.append((where, f"a chunk of `{fqn}` at offsets {offsets} lies outside its shape {shape}"))
                break
            covered += _volume(sizes)
        else:
            overlap = _overlap(chunks)
            if overlap:
                folder.problems.append((where, f"chunks of `{fqn}` overlap (at offsets {overlap[0]} and {overlap[1]})"))
            elif covered != total:
                folder.problems.append((where, f"the chunks of `{fqn}` leave a gap: they cover {covered} of its "
                                        f"{total} elements"))


def _volume(sizes) -> int:
    out = 1
    for n in sizes:
        out *= n
    return out


def _overlap(chunks):
    """The first two chunks that share an element, sweeping along the first dimension."""
    if not chunks or not chunks[0][0]:
        return None if len(chunks) < 2 else (chunks[0][0], chunks[1][0])
    ordered = sorted(chunks)
    for i, (a_off, a_size) in enumerate(ordered):
        for b_off, b_size in ordered[i + 1:]:
            if b_off[0] >= a_off[0] + a_size[0]:
                break
            if all(bo < ao + an and ao < bo + bn for ao, an, bo, bn in zip(a_off, a_size, b_off, b_size)
                   if an and bn):
                return a_off, b_off
    return None


def _check_ranges(folder: Folder) -> None:
    """Every chunk and bytes item has a byte range, inside a shard that exists and is long
    enough; then every shard is read, bytes items as files of their own."""
    where = folder.metadata.path
    have = {(r.fqn, r.offsets) for r in folder.ranges}
    for fqn, chunks in sorted(folder.chunks.items()):
        missing = [offsets for offsets, _ in chunks if (fqn, offsets) not in have]
        if missing:
            folder.problems.append((where, f"`.metadata` gives no byte range for {len(missing)} chunk(s) of `{fqn}` "
                                    f"(offsets {missing[0]})"))
    for fqn in folder.byte_items:
        if not any(r.fqn == fqn for r in folder.ranges):
            folder.problems.append((where, f"`.metadata` gives no byte range for the bytes item `{fqn}`"))
    by_file: Dict[str, List[Range]] = {}
    for r in folder.ranges:
        by_file.setdefault(r.file, []).append(r)
    for name in sorted(by_file):
        path = source.normpath(source.join(folder.path, name))
        if source.isabs(name) or source.dirname(source.relpath(path, folder.path)).startswith(".."):
            folder.problems.append((where, f"`.metadata` names the shard `{name}`, outside the checkpoint folder"))
            continue
        if not source.isfile(path):
            folder.problems.append((path, f"shard `{name}` named in `.metadata` ({len(by_file[name])} byte ranges) "
                                    "does not exist"))
            continue
        size = source.getsize(path)
        short = [r for r in by_file[name] if r.offset + r.length > size]
        if short:
            need = max(r.offset + r.length for r in short)
            folder.problems.append((path, f"shard `{name}` is truncated: {size} bytes, but `.metadata` needs {need} "
                                    f"({len(short)} byte ranges lie past its end)"))
        items = set(folder.byte_items)
        ranges = [(r.offset, r.length, f"bytes item `{r.fqn}` (bytes {r.offset}-{r.offset + r.length})")
                  for r in by_file[name] if r.fqn in items and r.offset + r.length <= size]
        # every range DCP reads is named: the bytes items are scanned as files of their own;
        # tensors load with weights_only=True and only their bounds matter
        folder.shards.append(read_checkpoint(path, ranges=ranges))
