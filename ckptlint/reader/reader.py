"""A torch-free checkpoint reader that sees every pickle a loader could run.

It recognises, by content: torch zip archives (read as torch's miniz reader reads them,
``zipdir.py``), several archives laid end to end (a DCP ``.distcp`` shard: each is read on
its own byte range), the legacy (non-zip) stream, raw pickles (and pickles appended after
them), the torch<0.4 tar format, safetensors files and Hugging Face ``*.index.json``
sharded checkpoints. It parses pickles with :mod:`ckptlint.reader.pickle_scan` (never
unpickles), never reads tensor bytes, and never raises for a bad file: integrity faults go
to ``Checkpoint.problems`` (CKPT109), a pickle it cannot parse to ``Pickle.error`` (fail
closed: CKPT101 + CKPT109).

Where torch's choice depends on details (several records named ``data.pkl`` ignoring case,
which torch resolves by a binary search over its sorted directory), it does not guess:
every record torch could open is scanned, and ``Checkpoint.problems`` says the file is odd.

Zip CRCs: torch does not check them, so a CRC mismatch never stops the scan; every record
except tensor storages is CRC-checked (CKPT109). Storage records are checked for presence
and size against the pickle; their CRCs only with ``data_crc=True`` (streamed), because that
means reading every tensor byte.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

from ckptlint.reader import zipdir
from ckptlint.reader.inert_machine import merge_uses
from ckptlint.reader.opcodes import OPCODES
from ckptlint.reader.pickle_scan import ScanResult, scan
from ckptlint.reader.records import PDict, PickleScanError, StorageInfo, TensorInfo, class_of
from ckptlint.reader.torch_tables import ITEMSIZE, STORAGE_DTYPES

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_PICKLE_BYTES = 1 << 30
MAX_SAFETENSORS_HEADER = 100 << 20
MAX_PICKLES = 1000  # pickles appended one after another; more is not checked (fail closed)
CHUNK = 1 << 20

SAFETENSORS_DTYPES = {
    "F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16",
    "BF16": "torch.bfloat16", "I64": "torch.int64", "I32": "torch.int32",
    "I16": "torch.int16", "I8": "torch.int8", "U8": "torch.uint8", "BOOL": "torch.bool",
    "U16": "torch.uint16", "U32": "torch.uint32", "U64": "torch.uint64",
    "F8_E4M3": "torch.float8_e4m3fn", "F8_E5M2": "torch.float8_e5m2",
    "F8_E8M0": "torch.float8_e8m0fnu", "C64": "torch.complex64",
}


@dataclass
class Pickle:
    """One pickle in the file that some loader unpickles."""

    where: str  # `archive/data.pkl`, `pickle 2 (byte 1234)`, `archive 2 (bytes 10-99): ...`
    globals: List[str] = field(default_factory=list)
    uses: Dict[str, str] = field(default_factory=dict)  # global -> calls | constructs | imports
    error: Optional[str] = None  # could not be parsed to the end: fail closed
    straddled: bool = False  # its frames end inside instructions: crafted
    item: bool = False  # in a byte range a loader opens on its own (a DCP item): say where
    implied: frozenset = frozenset()  # classes it builds without naming them (numpy dtypes)


@dataclass
class Checkpoint:
    path: str
    format: str = "unknown"  # zip | archives | legacy | pickle | tar | safetensors | sharded | unknown
    root: Any = None
    storages: Dict[str, StorageInfo] = field(default_factory=dict)
    pickles: List[Pickle] = field(default_factory=list)
    items: List[Any] = field(default_factory=list)  # roots of archives laid end to end
    problems: List[str] = field(default_factory=list)  # integrity faults: CKPT109
    crc_failed: bool = False
    not_checkpoint: Optional[str] = None  # not a checkpoint at all: CKPT109 only
    unverified: Optional[str] = None  # a format whose pickles are not all checked: CKPT101
    torchscript: bool = False  # torch.load hands it to torch.jit.load
    records: List[str] = field(default_factory=list)
    archive_version: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)  # safetensors __metadata__
    shards: List["Checkpoint"] = field(default_factory=list)
    failure: Optional[str] = None  # the reader itself failed before every pickle was read

    @property
    def globals(self) -> List[str]:
        out: List[str] = []
        for p in self.pickles:
            out.extend(g for g in p.globals if g not in out)
        return out

    @property
    def uses(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for p in self.pickles:
            out = merge_uses(out, p.uses)
        return out

    @property
    def implied(self) -> frozenset:
        return frozenset().union(*(p.implied for p in self.pickles))

    @property
    def pickle_error(self) -> Optional[str]:
        """Why some pickle of the file could not be proven safe (fail closed), or None."""
        for p in self.pickles:
            if p.error is not None:
                return p.error if len(self.pickles) == 1 else f"{p.error} in {p.where}"
        return self.failure

    @property
    def readable(self) -> bool:
        return self.not_checkpoint is None and not self.problems and self.pickle_error is None


def read_checkpoint(path, data_crc: bool = False, ranges=None, read_shard=None) -> Checkpoint:
    """Read a checkpoint file, every pickle a loader could open in it. With ``ranges``
    (``(offset, length, label)``), read only those byte ranges, each as a file of its own:
    a DCP shard, whose `.metadata` names every range DCP opens. ``read_shard(path)`` reads
    the shards a Hugging Face index names (default: read_checkpoint), so a caller that also
    reads them as files of their own reads each once; the shard is not changed."""
    path = os.path.abspath(os.fspath(path))
    ck = Checkpoint(path)
    try:
        if ranges is None:
            _read(ck, data_crc, read_shard or (lambda shard: read_checkpoint(shard, data_crc)))
        else:
            ck.format = "archives"
            _read_ranges(ck, ranges, data_crc)
    except MemoryError:
        ck.failure = "ran out of memory while parsing"
    except RecursionError:
        ck.failure = "nesting too deep"
    except OSError as exc:
        ck.not_checkpoint = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - never crash on a file; never fail open
        reason = f"reader failure ({type(exc).__name__}: {exc})"
        if ck.format in ("zip", "archives", "legacy", "pickle", "tar"):
            ck.failure = reason  # some pickle may not have been checked: CKPT101 + CKPT109
        else:
            ck.problems.append(reason)
    return ck


def _read(ck: Checkpoint, data_crc: bool, read_shard) -> None:
    if not os.path.exists(ck.path):
        ck.not_checkpoint = "file does not exist"
        return
    if os.path.isdir(ck.path):
        ck.not_checkpoint = "is a directory, not a checkpoint file"
        return
    size = os.path.getsize(ck.path)
    if is_shard_index(ck.path):
        _read_sharded(ck, read_shard)
        return
    if size == 0:
        ck.not_checkpoint = "empty file"
        return
    with open(ck.path, "rb") as f:
        _read_stream(ck, f, size, data_crc)


def _read_ranges(ck: Checkpoint, ranges, data_crc: bool) -> None:
    with open(ck.path, "rb") as f:
        for offset, length, label in ranges:
            if length > MAX_PICKLE_BYTES:
                ck.pickles.append(Pickle(label, error="larger than the 1 GiB parsing limit"))
                continue
            f.seek(offset)
            part = Checkpoint(ck.path)
            data = f.read(length)
            _read_stream(part, io.BytesIO(data), len(data), data_crc)
            ck.pickles.extend(replace(p, where=f"{label}: {p.where}", item=True) for p in part.pickles)
            ck.problems.extend(f"{label}: {problem}" for problem in part.problems)
            if part.not_checkpoint:
                ck.problems.append(f"{label}: {part.not_checkpoint}")
            ck.torchscript = ck.torchscript or part.torchscript
            ck.unverified = ck.unverified or part.unverified


# compressed pickles: joblib.load undoes these itself, and `pickle.load(gzip.open(...))` is common
COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x5d\x00\x00", "lzma"),
              (b"\x78\x01", "zlib"), (b"\x78\x5e", "zlib"), (b"\x78\x9c", "zlib"), (b"\x78\xda", "zlib"))


def _decompressor(kind: str):
    import bz2
    import lzma

    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)


def _inflate(f: BinaryIO, kind: str, limit: int) -> bytes:
    """The decompressed content, at most ``limit`` bytes (more: PickleScanError)."""
    d = _decompressor(kind)
    out = []
    total = 0
    f.seek(0)
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        part = d.decompress(chunk, limit + 1 - total) if kind in ("gzip", "zlib") else d.decompress(chunk)
        out.append(part)
        total += len(part)
        if total > limit:
            raise PickleScanError(f"{kind}-compressed content larger than the parsing limit")
        if getattr(d, "eof", False):
            break
    return b"".join(out)


def compressed_kind(head: bytes) -> Optional[str]:
    return next((kind for magic, kind in COMPRESSED if head.startswith(magic)), None)


def _read_stream(ck: Checkpoint, f: BinaryIO, size: int, data_crc: bool) -> None:
    head = f.read(512)
    kind = compressed_kind(head)
    if kind is not None:
        try:
            inner = _inflate(f, kind, MAX_PICKLE_BYTES)
        except (OSError, EOFError, ValueError, zlib.error, PickleScanError) as exc:
            ck.not_checkpoint = f"{kind}-compressed, but it does not decompress ({exc})"
            return
        _read_stream(ck, io.BytesIO(inner), len(inner), data_crc)
        for p in ck.pickles:
            p.where = f"{p.where} ({kind}-compressed)"
        return
    if head.startswith(zipdir.LOCAL_SIG):  # torch.load's own test for its zip format
        _read_zip(ck, f, size, data_crc)
    elif head.startswith(b"version https://git-lfs"):
        ck.not_checkpoint = "a git-LFS pointer file, not the checkpoint (run `git lfs pull`)"
    elif _looks_like_safetensors(head, size):
        _read_safetensors(ck, f, size)
    elif ck.path.endswith(".safetensors"):
        ck.not_checkpoint = "bad safetensors header"
    elif head.lstrip()[:1] == b"<" and b"<html" in head.lower() or head.lstrip().lower().startswith(b"<!doctype"):
        ck.not_checkpoint = "an HTML page, not a checkpoint (a failed download?)"
    else:
        tar = _torch_tar(f)
        if tar is not None:
            _read_tar(ck, f, tar)
        _read_pickle_stream(ck, f, head, size, quiet=tar is not None)


def _scan_pickle(ck: Checkpoint, where: str, data, quiet: bool = False, start: int = 0) -> Optional[ScanResult]:
    """Scan one pickle into ``ck.pickles``. A failure is recorded (fail closed) unless
    ``quiet`` and it named nothing: bytes that are not a pickle at all."""
    try:
        result = scan(data, MAX_PICKLE_BYTES, start)
    except PickleScanError as exc:
        names = list(getattr(exc, "globals", []))
        if not (quiet and not names):
            ck.pickles.append(Pickle(where, names, dict(getattr(exc, "uses", {})), str(exc),
                                     bool(getattr(exc, "straddled", False))))
        return None
    ck.pickles.append(Pickle(where, result.globals, result.uses, None, result.straddled,
                             implied=result.implied))
    return result


# -- zip archives ------------------------------------------------------------------------


def _read_zip(ck: Checkpoint, f: BinaryIO, size: int, data_crc: bool) -> None:
    ck.format = "zip"
    local: List[zipdir.LocalRecord] = []
    scanned: Dict[int, Optional[ScanResult]] = {}
    windows = _archive_windows(f, size, local, scanned)
    try:
        whole: Optional[zipdir.Archive] = zipdir.open_archive(f, 0, size)
    except zipdir.ZipError as exc:
        whole, whole_error = None, str(exc)
    else:
        whole_error = None
    # several archives laid end to end: the whole-file view is what torch.load(path) would
    # read, expected to be odd
    several = bool(windows) and windows != [(0, size)]
    seen = _Seen(scanned)  # absolute data offsets of pickles already read
    if whole is not None:
        ck.records = sorted(e.text for e in whole.entries)
        root, storages = _read_archive(ck, whole, "", seen, data_crc, strict=not several)
        ck.root, ck.storages = root, storages
        ck.torchscript = _is_torchscript(whole)
        ck.archive_version = _archive_version(whole)
        if not any(e.name.lower().endswith(b".pkl") for e in whole.entries) and not several:
            ck.not_checkpoint = "a zip archive without data.pkl, not a torch checkpoint"
            return
    elif not several:
        ck.problems.append(f"corrupt or truncated zip archive ({whole_error})")
        return
    if several:
        ck.format = "archives"
        total = len(windows)
        for i, (start, end) in enumerate(windows, 1):
            label = _window_label(i, total, (start, end))
            try:
                archive = zipdir.open_archive(f, start, end)
            except zipdir.ZipError as exc:
                ck.problems.append(f"{label}: {exc}")
                continue
            root, storages = _read_archive(ck, archive, label + ": ", seen, data_crc, strict=True)
            ck.items.append(root)
            for key, st in storages.items():
                ck.storages.setdefault(f"{i}/{key}", st)
    _read_unlisted(ck, f, local, seen)
    covered = windows[-1][1] if windows else 0
    if whole is None and covered < size:
        ck.problems.append(f"bytes {covered}-{size} are not part of any archive")


class _Seen(set):
    """Absolute data offsets of the pickles read so far, and the walk's scans by offset."""

    def __init__(self, scanned: Dict[int, Optional[ScanResult]]):
        super().__init__()
        self.scanned = scanned


def _window_label(i: int, total: int, window: Tuple[int, int]) -> str:
    return f"archive {i} of {total} (bytes {window[0]}-{window[1]})"


def _read_unlisted(ck: Checkpoint, f: BinaryIO, local: List[zipdir.LocalRecord], seen: set) -> None:
    """Pickle records that lie in the file but that no central directory read above lists
    (another zip reader, such as Python's, may find them)."""
    for record in local:
        if not record.name.lower().endswith(b".pkl") or record.data_offset in seen:
            continue
        seen.add(record.data_offset)
        try:
            data = zipdir.read_local(f, record, MAX_PICKLE_BYTES)
        except zipdir.ZipError as exc:
            ck.problems.append(str(exc))
            continue
        _scan_pickle(ck, f"{record.text} (a record at byte {record.data_offset} that no directory lists)",
                     data)


def _archive_windows(f: BinaryIO, size: int, local: List[zipdir.LocalRecord],
                     scanned: Dict[int, ScanResult]) -> List[Tuple[int, int]]:
    """Byte ranges of the archives laid end to end from the start of the file; the local
    records met on the way go to ``local``, the data.pkl scans made to size them to
    ``scanned``."""
    out: List[Tuple[int, int]] = []
    start = 0
    while start < size:
        f.seek(start)
        if f.read(4) != zipdir.LOCAL_SIG:
            break
        try:
            end = zipdir.walk_archive(f, start, size, local, _storage_sizes(f, local, scanned))
        except (zipdir.ZipError, struct.error):
            end = None
        if end is None or end <= start:
            break
        out.append((start, end))
        start = end
    return out


def _storage_sizes(f: BinaryIO, local: List[zipdir.LocalRecord], scanned: Dict[int, ScanResult]):
    """``expected(name)`` for the walk: a storage record's size from the ``data.pkl`` met
    just before it in the same archive (torch.save writes data.pkl first). The scans go to
    ``scanned`` (by data offset), so the archive's own reading does not repeat them."""
    latest: Dict[bytes, zipdir.LocalRecord] = {}  # folder -> its last data.pkl record
    seen = [0]

    def expected(name: bytes) -> Optional[int]:
        for record in local[seen[0]:]:
            if record.name.endswith(b"/data.pkl"):
                latest[record.name[:-len(b"/data.pkl")]] = record
        seen[0] = len(local)
        folder, sep, key = name.rpartition(b"/data/")
        pkl = latest.get(folder) if sep else None
        if pkl is None or pkl.comp_size > MAX_PICKLE_BYTES or pkl.method != 0:
            return None
        if pkl.data_offset not in scanned:
            position = f.tell()
            try:
                scanned[pkl.data_offset] = scan(zipdir.read_local(f, pkl, MAX_PICKLE_BYTES))
            except (PickleScanError, zipdir.ZipError):
                scanned[pkl.data_offset] = None
            f.seek(position)
        result = scanned[pkl.data_offset]
        st = result.storages.get(key.decode("utf-8", "replace")) if result is not None else None
        return _storage_bytes(st) if st is not None else None

    return expected


def _prefix(archive: zipdir.Archive) -> Optional[bytes]:
    """torch's archive folder: record 0's name up to its first `/` (None: torch refuses)."""
    if not archive.entries:
        return None
    name = archive.entries[0].name
    cut = name.find(b"/")
    return None if cut < 0 else name[:cut + 1]


def _lookup(archive: zipdir.Archive, name: bytes) -> List[zipdir.Entry]:
    """Every record torch's case-insensitive lookup could return for ``name``."""
    return archive.by_name().get(name.lower(), [])


def _is_torchscript(archive: zipdir.Archive) -> bool:
    prefix = _prefix(archive)
    return prefix is not None and any(e.name == prefix + b"constants.pkl" for e in archive.entries)


def _archive_version(archive: zipdir.Archive) -> Optional[str]:
    prefix = _prefix(archive)
    if prefix is None:
        return None
    for name in (b".data/version", b"version"):
        for entry in _lookup(archive, prefix + name)[:1]:
            if entry.size < 64:
                try:
                    return archive.read(entry, 64).decode("ascii", "replace").strip()
                except zipdir.ZipError:
                    return None
    return None


def _read_archive(ck: Checkpoint, archive: zipdir.Archive, label: str, seen: set, data_crc: bool,
                  strict: bool) -> Tuple[Any, Dict[str, StorageInfo]]:
    """Scan every pickle record of one archive; return the object tree and storages of the
    record torch opens as ``data.pkl``. ``strict``: faults of this view are problems (a
    whole-file view of several archives laid end to end is expected to be odd)."""
    prefix = _prefix(archive)
    data_pkl = (prefix + b"data.pkl").lower() if prefix else None
    pickles = [e for e in archive.entries if e.name.lower().endswith(b".pkl") and not e.is_directory]
    by_name: Dict[bytes, List[zipdir.Entry]] = {}
    for e in pickles:
        by_name.setdefault(e.name.lower(), []).append(e)
    for lowered, group in sorted(by_name.items()):
        if len(group) > 1:
            scanned = "both were" if len(group) == 2 else f"all {len(group)} were"
            ck.problems.append(
                f"{label}{len(group)} records named `{group[0].text}` (ignoring case): torch opens "
                f"one of them, chosen by its directory lookup; a file torch.save wrote never has "
                f"this, {scanned} scanned")
    root, storages, chosen = None, {}, False
    for entry in pickles:
        twins = len(by_name[entry.name.lower()]) > 1
        where = label + entry.text + (f" (directory record {entry.index})" if twins else "")
        try:
            offset = archive.start + archive.data_offset(entry)
        except zipdir.ZipError as exc:
            if strict:
                ck.problems.append(f"{label}{exc}")
            continue
        if offset in seen:
            continue
        seen.add(offset)
        if entry.size > MAX_PICKLE_BYTES:
            ck.pickles.append(Pickle(where, error=f"`{entry.text}` is larger than the 1 GiB parsing limit"))
            continue
        try:
            data = archive.read(entry, MAX_PICKLE_BYTES)
        except zipdir.ZipError as exc:
            if strict:
                ck.problems.append(f"{label}{exc}")
            continue
        if zlib.crc32(data) & 0xFFFFFFFF != entry.crc:
            ck.crc_failed = True
            ck.problems.append(f"{label}CRC mismatch in `{entry.text}` (the pickle is corrupt)")
        earlier = seen.scanned.get(offset)
        if earlier is not None and len(data) == entry.size:  # scanned by the walk already
            ck.pickles.append(Pickle(where, earlier.globals, earlier.uses, None, earlier.straddled,
                                     implied=earlier.implied))
            result = earlier
        else:
            result = _scan_pickle(ck, where, data)
        if result is not None and entry.name.lower() == data_pkl and not chosen:
            root, storages, chosen = result.root, result.storages, True
    _check_records(ck, archive, label, prefix, storages, data_crc, strict)
    return root, storages


def _check_records(ck, archive, label, prefix, storages, data_crc, strict) -> None:
    """CRCs of the small records, presence and size of every storage the pickle names."""
    if not strict:
        return
    data_dir = (prefix or b"") + b"data/"
    for entry in archive.entries:
        lowered = entry.name.lower()
        if lowered.endswith(b".pkl") or entry.is_directory:
            continue
        if lowered.startswith(data_dir.lower()) and not data_crc:
            continue
        if not _crc_ok(archive, entry):
            ck.crc_failed = True
            ck.problems.append(f"{label}CRC mismatch in `{entry.text}`")
    for key in sorted(storages):
        st = storages[key]
        found = _lookup(archive, data_dir + key.encode("utf-8", "replace"))
        if not found:
            ck.problems.append(f"{label}storage `{key}` named in data.pkl is missing from the archive")
            continue
        need = _storage_bytes(st)
        if need is not None and found[0].size < need:
            ck.problems.append(
                f"{label}storage `{key}` holds {found[0].size} bytes, the pickle needs {need} (truncated)")


def _crc_ok(archive: zipdir.Archive, entry: zipdir.Entry) -> bool:
    try:
        if entry.method != 0:
            return zlib.crc32(archive.read(entry, MAX_PICKLE_BYTES)) & 0xFFFFFFFF == entry.crc
        offset = archive.data_offset(entry)
        crc, done = 0, 0
        while done < entry.size:
            chunk = archive._read(offset + done, min(CHUNK, entry.size - done))
            if not chunk:
                return False
            crc = zlib.crc32(chunk, crc)
            done += len(chunk)
        return crc & 0xFFFFFFFF == entry.crc
    except zipdir.ZipError:
        return False


def _storage_bytes(st: StorageInfo) -> Optional[int]:
    item = ITEMSIZE.get(st.dtype)
    if st.numel is None or item is None:
        return None
    if st.type_name in ("UntypedStorage", "TypedStorage"):
        return st.numel
    return st.numel * item


# -- legacy stream and raw pickles -------------------------------------------------------


def _read_pickle_stream(ck: Checkpoint, f: BinaryIO, head: bytes, size: int, quiet: bool) -> None:
    """What ``pickle.load`` reads, again and again: torch's legacy format is five pickles
    then raw storages; any other file is a pickle, and pickles appended after it run too
    for a reader that calls ``pickle.load`` until the end."""
    if head[:1] not in OPCODES:
        if not quiet:
            ck.not_checkpoint = _not_a_checkpoint(ck.path, f, size, head)
        return
    f.seek(0)
    says_pickle = head[:1] == b"\x80" and b"\x00" < head[1:2] <= b"\x05"
    # Only something that names code (or says it is a pickle) is treated as one.
    first = _scan_pickle(ck, "pickle 1 (byte 0)" if not quiet else "the file read as a pickle", f,
                         quiet=quiet or not (says_pickle or head[:1] in (b"c", b"i")))
    if ck.format == "unknown":
        ck.format = "pickle"
    if first is None:
        if not quiet and not says_pickle and ck.pickles and not _names_a_module(ck.pickles[-1]):
            # text read as a protocol 0 pickle (`import torch` is INST of a module `mport torch`):
            # it fails before naming anything importable, so no loader runs anything from it
            ck.pickles.pop()
            ck.format = "unknown"
        if not ck.pickles and not quiet:
            ck.not_checkpoint = _not_a_checkpoint(ck.path, f, size, head)
        return
    if quiet:
        return
    if first.root == LEGACY_MAGIC and not isinstance(first.root, bool):
        _read_legacy(ck, f, size)
        return
    ck.root, ck.storages = first.root, first.storages
    if class_of(first.root) == "torch.distributed.checkpoint.metadata.Metadata":
        ck.format = "dcp-metadata"
    _read_appended(ck, f, size, first.end)


def _names_a_module(p: Pickle) -> bool:
    """Does a pickle that failed name a global a loader could try to import?"""
    return any(all(part.isidentifier() for part in g.split(".")) for g in p.globals)


def _not_a_checkpoint(path: str, f: BinaryIO, size: int, head: bytes) -> str:
    """CKPT109's words for a file that holds no checkpoint: what it is when its content
    shows it (text: Python source, JSON), else its first bytes."""
    f.seek(0)
    data = f.read(SNIFF_BYTES)
    if size > len(data):
        data = data[:data.rfind(b"\n") + 1]  # whole lines: no character cut in two
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text.strip() or "\x00" in text:
        return f"not a checkpoint (unrecognised content starting {head[:16]!r})"
    first_line = text.lstrip().split("\n", 1)[0]
    if path.endswith((".py", ".pyi", ".pyw")) or first_line.startswith("#!") and "python" in first_line:
        return "not a checkpoint (Python source)"
    if size == len(data) and text.lstrip()[:1] in ("{", "["):
        import json

        try:
            json.loads(text)
            return "not a checkpoint (JSON)"
        except ValueError:
            pass
    return "not a checkpoint (text)"


def _read_appended(ck: Checkpoint, f: BinaryIO, size: int, pos: int) -> None:
    for n in range(2, MAX_PICKLES + 2):
        if pos >= size:
            return
        f.seek(pos)
        result = _scan_pickle(ck, f"pickle {n} (byte {pos})", f, quiet=True)
        if result is None:
            return  # not a pickle (or failed after naming what it runs: recorded)
        pos = result.end
    ck.pickles.append(Pickle(f"the bytes after byte {pos}",
                             error=f"more than {MAX_PICKLES} pickles one after another"))


def _read_legacy(ck: Checkpoint, f: BinaryIO, size: int) -> None:
    ck.format = "legacy"
    results = []
    for where in ("protocol version", "system info", "main object", "storage keys"):
        result = _scan_pickle(ck, f"legacy pickle ({where})", f)
        if result is None:
            return
        results.append(result)
    main, keys = results[2], results[3]
    ck.root, ck.storages = main.root, main.storages
    order = [k for k in keys.root if isinstance(k, str)] if isinstance(keys.root, list) else []
    if not order:
        if main.storages:
            ck.problems.append("storage key list is missing or malformed")
        return
    pos = keys.end
    for key in order:
        if pos + 8 > size:
            ck.problems.append(f"file ends before storage `{key}` (truncated)")
            return
        f.seek(pos)
        (numel,) = struct.unpack("<q", f.read(8))
        st = ck.storages.get(key)
        item = ITEMSIZE.get(st.dtype, 1) if st else 1
        if numel < 0:
            ck.problems.append(f"storage `{key}` has a negative size")
            return
        pos += 8 + numel * item
        if pos > size:
            ck.problems.append(f"file ends inside storage `{key}` (truncated)")
            return
    for key in sorted(set(ck.storages) - set(order)):
        ck.problems.append(f"storage `{key}` named in the pickle is missing from the file")


# -- the torch < 0.4 tar format ---------------------------------------------------------


def _torch_tar(f: BinaryIO):
    """The tar archive torch.load would unpickle: any tar ``tarfile`` reads with a
    `storages` member (torch tries the tar path first and fails without it)."""
    f.seek(0)
    if f.read(262)[257:262] != b"ustar" and not _old_tar_header(f):
        return None
    import tarfile

    f.seek(0)
    try:  # "r:" only, as torch opens it (is_tarfile would also try every compression)
        tar = tarfile.open(fileobj=f, mode="r:")
        tar.getmember("storages")
        return tar
    except (tarfile.TarError, KeyError, OSError, ValueError, EOFError):
        return None


def _old_tar_header(f: BinaryIO) -> bool:
    """A pre-POSIX (v7) tar header: its checksum field matches its bytes."""
    f.seek(0)
    block = f.read(512)
    if len(block) < 512:
        return False
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    signed = sum(struct.unpack("148b", block[:148])) + 256 + sum(struct.unpack("356b", block[156:]))
    return stored in (unsigned, signed)  # tarfile accepts either sum


def _read_tar(ck: Checkpoint, f: BinaryIO, tar) -> None:
    """torch's ``legacy_load``: the `storages` member is a pickle (their count), then per
    storage a pickle and raw bytes; a `storage views` pickle; the `tensors` member alike;
    then the `pickle` member. ``weights_only=True`` refuses the format, so the file is never
    reported as proven safe, but every pickle that can be reached is scanned."""
    ck.format = "tar"
    ck.unverified = ("the torch<0.4 tar checkpoint format: `torch.load(weights_only=True)` refuses it "
                     "and `weights_only=False` unpickles it")
    members = {"storages": _tar_storages, "tensors": _tar_tensors, "pickle": None}
    for name, walk in members.items():
        try:
            member = tar.getmember(name)  # the last member of that name, as torch's extract
        except KeyError:
            return
        handle = tar.extractfile(member)
        if handle is None or member.size > MAX_PICKLE_BYTES:
            ck.failure = f"tar member `{name}` cannot be read"
            return
        data = handle.read()
        if walk is None:
            result = _scan_pickle(ck, f"tar member `{name}`", data)
            if result is not None:
                ck.root = result.root
            return
        if not walk(ck, data):
            return


def _tar_pickle(ck: Checkpoint, where: str, data: bytes, pos: int) -> Optional[ScanResult]:
    return _scan_pickle(ck, where, data, start=pos)


def _tar_records(ck: Checkpoint, data: bytes, member: str, item: str, raw_size) -> Optional[int]:
    """A member torch reads as a pickle counting records, then per record a pickle followed
    by ``raw_size(args, data)`` raw bytes. The position after the records, or None."""
    head = _tar_pickle(ck, f"tar member `{member}` (count)", data, 0)
    if head is None or not isinstance(head.root, int):
        return None
    pos = head.end
    for i in range(min(head.root, 1 << 20)):
        args = _tar_pickle(ck, f"tar member `{member}` ({item} {i})", data, pos)
        if args is None:
            return None
        size = raw_size(args, data) if args.end + 8 <= len(data) else None
        if size is None:
            ck.failure = f"cannot follow the tar `{member}` member past {item} {i}"
            return None
        pos = args.end + size
    return pos


def _storage_bytes_after(args: ScanResult, data: bytes) -> Optional[int]:
    """(key, location, storage type) is followed by the element count and the elements."""
    stype = args.root[2] if isinstance(args.root, tuple) and len(args.root) == 3 else None
    item = ITEMSIZE.get(STORAGE_DTYPES.get(getattr(stype, "name", ""), ""))
    if item is None:
        return None
    (numel,) = struct.unpack_from("<q", data, args.end)
    return 8 + numel * item


def _tensor_bytes_after(args: ScanResult, data: bytes) -> Optional[int]:
    """(key, storage id, type) is followed by ndim, padding, sizes, strides and an offset."""
    (ndim,) = struct.unpack_from("<i", data, args.end)
    return 8 + 16 * max(ndim, 0) + 8


def _tar_storages(ck: Checkpoint, data: bytes) -> bool:
    pos = _tar_records(ck, data, "storages", "storage", _storage_bytes_after)
    return pos is not None and _tar_pickle(ck, "tar member `storages` (views)", data, pos) is not None


def _tar_tensors(ck: Checkpoint, data: bytes) -> bool:
    return _tar_records(ck, data, "tensors", "tensor", _tensor_bytes_after) is not None


# -- safetensors -------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _read_safetensors(ck: Checkpoint, f: BinaryIO, size: int) -> None:
    import json

    ck.format = "safetensors"
    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_SAFETENSORS_HEADER:
        ck.not_checkpoint = "bad safetensors header (header larger than 100 MB)"
        return
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        ck.not_checkpoint = f"bad safetensors header ({exc.__class__.__name__})"
        return
    if not isinstance(header, dict):
        ck.not_checkpoint = "bad safetensors header (not a JSON object)"
        return
    data_len = size - 8 - n
    root = PDict()
    for key in sorted(header):
        value = header[key]
        if key == "__metadata__":
            ck.metadata = value if isinstance(value, dict) else {}
            continue
        if not (isinstance(value, dict) and isinstance(value.get("shape"), list)
                and isinstance(value.get("data_offsets"), list) and len(value["data_offsets"]) == 2):
            ck.not_checkpoint = f"bad safetensors header (entry `{key}`)"
            return
        begin, end = value["data_offsets"]
        if end > data_len:
            ck.problems.append(f"tensor `{key}` lies past the end of the file (truncated)")
        dtype = SAFETENSORS_DTYPES.get(str(value.get("dtype")), f"unknown ({value.get('dtype')})")
        root[key] = TensorInfo(dtype, tuple(value["shape"]), "cpu", None)
    ck.root = root


# -- Hugging Face sharded checkpoints ----------------------------------------------------


def is_shard_index(path: str) -> bool:
    """A Hugging Face `*.index.json`: read with the shards it names."""
    return path.endswith(".index.json")


def _read_sharded(ck: Checkpoint, read_shard) -> None:
    import json

    ck.format = "sharded"
    try:
        with open(ck.path, "rb") as f:
            index = json.loads(f.read(MAX_SAFETENSORS_HEADER).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ck.not_checkpoint = "not a valid JSON shard index"
        return
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        ck.not_checkpoint = "shard index without a `weight_map`"
        return
    if isinstance(index.get("metadata"), dict):
        ck.metadata = index["metadata"]
    base = os.path.dirname(ck.path)
    root = PDict()
    for shard_name in sorted(set(weight_map.values())):
        shard = read_shard(os.path.join(base, shard_name))
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


# -- telling checkpoint files from the rest of a folder ------------------------------------

# names `verify FOLDER` and the pre-commit hook check even when their content says nothing
# (an empty or HTML `model.pt` is worth a CKPT109)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pkl", ".pickle", ".joblib")
SNIFF_BYTES = 1 << 16


def sniff(path: str) -> Optional[str]:
    """None when the file is something a loader could unpickle or a checkpoint format,
    judged by content whatever its name; else why it is not (for the skip count)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            size = f.seek(0, os.SEEK_END)
            if head.startswith(zipdir.LOCAL_SIG):
                try:
                    archive = zipdir.open_archive(f, 0, size)
                except zipdir.ZipError:
                    return None  # a broken zip: torch would try it; CKPT109 says what is wrong
                if any(e.name.lower().endswith(b".pkl") for e in archive.entries):
                    return None
                return None if path.endswith(CHECKPOINT_SUFFIXES) else "zip archives without pickles"
            if head[:1] == b"\x80" and b"\x00" < head[1:2] <= b"\x05":
                return None  # a pickle (protocol 1-5), torch's legacy format, DCP .metadata
            kind = compressed_kind(head)
            if kind is not None:
                inner = _peek_inflated(head, kind)
                if inner[:1] == b"\x80" and b"\x00" < inner[1:2] <= b"\x05" or inner.startswith(zipdir.LOCAL_SIG):
                    return None  # a compressed pickle (joblib's compress=..., pickle + gzip)
                return "compressed files that hold no pickle"
            if _looks_like_safetensors(head, size):
                return None
            if _torch_tar(f) is not None:
                return None
    except OSError:
        return None  # unreadable: verifying it says why
    if path.endswith(CHECKPOINT_SUFFIXES):
        return None
    if head[:1] in OPCODES and _text_pickle(head):
        return None
    return "not checkpoints or pickles (by content)"


def _peek_inflated(head: bytes, kind: str) -> bytes:
    try:
        d = _decompressor(kind)
        return d.decompress(head, 16) if kind in ("gzip", "zlib") else d.decompress(head)[:16]
    except Exception:  # noqa: BLE001 - not really compressed: not ours
        return b""


def _text_pickle(head: bytes) -> bool:
    """A protocol 0 pickle: it reaches STOP, or calls an importable-looking global before it
    fails (a text file that starts with `click\nrequests` only "imports" `lick.requests`;
    a Python file that starts with `import x` names `mport x`, which nothing can import)."""
    try:
        scan(head, SNIFF_BYTES)
        return True
    except PickleScanError as exc:
        uses = getattr(exc, "uses", {})
        return any(use != "imports" and "." in g and all(p.isidentifier() for p in g.split("."))
                   for g, use in uses.items())
