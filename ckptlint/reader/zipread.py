"""Zip containers as torch reads them: checkpoints, TorchScript and torch.export (`.pt2`)
archives, and several archives laid end to end (a DCP ``.distcp`` shard).

Every record is read through its central-directory entry (method, sizes) and its local
header (where the data starts), as torch's miniz does (``zipdir.py``); a record's bytes read
one way are never taken for the same record read another way. Every ``.pkl`` record torch
could open is scanned (duplicates and case variants included), and the checks torch itself
makes before it unpickles anything are made here too, so a file torch refuses is CKPT109:
record names that are not UTF-8, records outside the archive folder, the ``version`` record
(present, an integer torch reads), ``byteorder`` and ``.storage_alignment``, the entries of
the records torch reads (no encryption, stored or deflated, a local header where the entry
says), and each storage record's exact size.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

from ckptlint.reader import zipdir
from ckptlint.reader.checkpoint import MAX_PICKLE_BYTES, Checkpoint, Context, Pickle
from ckptlint.reader.pickle_scan import ScanResult, scan
from ckptlint.reader.records import PickleScanError, StorageInfo
from ckptlint.reader.torch_tables import ITEMSIZE

CHUNK = 1 << 20
# torch 2.13's PyTorchStreamReader reads archive versions 1 to 10 (kMin/kMaxSupportedFileFormatVersion)
MIN_VERSION, MAX_VERSION = 1, 10


def read_zip(ck: Checkpoint, f: BinaryIO, size: int, ctx: Context) -> None:
    ck.format = "zip"
    local: List[zipdir.LocalRecord] = []
    scanned: Dict[Tuple[int, int], Optional[ScanResult]] = {}
    windows = _archive_windows(f, size, local, scanned)
    whole_error: Optional[str] = None
    try:
        whole: Optional[zipdir.Archive] = zipdir.open_archive(f, 0, size)
    except zipdir.ZipError as exc:
        whole, whole_error = None, str(exc)
    # several archives laid end to end: the whole-file view is what torch.load(path) would
    # read, expected to be odd
    several = bool(windows) and windows != [(0, size)]
    seen = _Seen(scanned)
    if whole is not None:
        ck.records = sorted(e.text for e in whole.entries)
        root, storages = _read_archive(ck, whole, "", seen, ctx, strict=not several)
        ck.root, ck.storages = root, storages
        ck.torchscript = _is_torchscript(whole)
        ck.archive_version = _archive_version(whole)
        if _is_pt2(whole):
            _read_pt2(ck, whole, ctx)
            return
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
            root, storages = _read_archive(ck, archive, label + ": ", seen, ctx, strict=True)
            ck.items.append(root)
            for key, st in storages.items():
                ck.storages.setdefault(f"{i}/{key}", st)
    _read_unlisted(ck, f, local, seen, ctx)
    covered = windows[-1][1] if windows else 0
    if whole is None and covered < size:
        ck.problems.append(f"bytes {covered}-{size} are not part of any archive")


class _Seen(set):
    """Absolute data offsets of the pickles read so far, and the walk's scans of stored
    records, by (data offset, size): a record read another way (deflated, or with other
    sizes, as its central directory may say) is scanned again."""

    def __init__(self, scanned: Dict[Tuple[int, int], Optional[ScanResult]]):
        super().__init__()
        self.scanned = scanned


def _window_label(i: int, total: int, window: Tuple[int, int]) -> str:
    return f"archive {i} of {total} (bytes {window[0]}-{window[1]})"


def _read_unlisted(ck: Checkpoint, f: BinaryIO, local: List[zipdir.LocalRecord], seen: set, ctx: Context) -> None:
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
        ctx.scan(ck, f"{record.text} (a record at byte {record.data_offset} that no directory lists)", data)


def _archive_windows(f: BinaryIO, size: int, local: List[zipdir.LocalRecord],
                     scanned: Dict[Tuple[int, int], Optional[ScanResult]]) -> List[Tuple[int, int]]:
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


def _storage_sizes(f: BinaryIO, local: List[zipdir.LocalRecord], scanned: Dict[Tuple[int, int], Optional[ScanResult]]):
    """``expected(name)`` for the walk: a storage record's size from the ``data.pkl`` met
    just before it in the same archive (torch.save writes data.pkl first). The scans of
    stored data.pkl records go to ``scanned`` by (data offset, size)."""
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
        cache_key = (pkl.data_offset, pkl.comp_size)
        if cache_key not in scanned:
            position = f.tell()
            try:
                scanned[cache_key] = scan(zipdir.read_local(f, pkl, MAX_PICKLE_BYTES))
            except (PickleScanError, zipdir.ZipError):
                scanned[cache_key] = None
            f.seek(position)
        result = scanned[cache_key]
        st = result.storages.get(key.decode("utf-8", "replace")) if result is not None else None
        return storage_bytes(st) if st is not None else None

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


def _small(archive: zipdir.Archive, name: bytes, limit: int = 64) -> Optional[bytes]:
    """The content of the record torch finds for ``name`` (under the archive folder), or
    None when there is none, it is larger than ``limit`` or cannot be read."""
    prefix = _prefix(archive)
    if prefix is None:
        return None
    for entry in _lookup(archive, prefix + name)[:1]:
        if entry.size <= limit:
            try:
                return archive.read(entry, limit)
            except zipdir.ZipError:
                return None
    return None


def _archive_version(archive: zipdir.Archive) -> Optional[str]:
    for name in (b".data/version", b"version"):
        data = _small(archive, name)
        if data is not None:
            return data.decode("ascii", "replace").strip()
    return None


def _read_archive(ck: Checkpoint, archive: zipdir.Archive, label: str, seen: _Seen, ctx: Context,
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
        is_data_pkl = entry.name.lower() == data_pkl
        # the walk scanned this record's bytes as stored: reuse that only when torch reads
        # them the same way (stored, same size), never for a record it inflates
        earlier = seen.scanned.get((offset, entry.comp_size)) if entry.method == 0 else None
        result = ctx.scan(ck, where, data, weights_only=is_data_pkl, reuse=earlier)
        if result is not None and is_data_pkl and not chosen:
            root, storages, chosen = result.root, result.storages, True
    if strict:
        _check_records(ck, archive, label, prefix, storages, ctx.data_crc)
        _check_as_torch(ck, archive, label, prefix, data_pkl)
    return root, storages


def _check_records(ck, archive, label, prefix, storages, data_crc) -> None:
    """CRCs of the small records; presence, entry and exact size of every storage the
    pickle names (torch refuses a record of another size)."""
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
        fault = zipdir.entry_fault(archive, found[0])
        if fault is not None:
            ck.problems.append(f"{label}{fault}")
            continue
        need = storage_bytes(st)
        if need is not None and found[0].size != need:
            cut = " (truncated)" if found[0].size < need else ""
            ck.problems.append(f"{label}storage `{key}` holds {found[0].size} bytes, the pickle needs {need}{cut}")


def _check_as_torch(ck: Checkpoint, archive: zipdir.Archive, label: str, prefix: Optional[bytes],
                    data_pkl: Optional[bytes]) -> None:
    """What PyTorchStreamReader and torch.load check before unpickling (torch 2.13)."""
    for entry in archive.entries:
        try:
            entry.name.decode("utf-8")
        except UnicodeDecodeError:
            ck.problems.append(f"{label}record name {entry.name!r} is not UTF-8: torch refuses the archive")
            return
    if prefix is None:
        return  # torch refuses it too; the missing data.pkl says so
    outside = [e.text for e in archive.entries if not e.name.startswith(prefix)]
    if outside:
        ck.problems.append(f"{label}record `{outside[0]}` is outside the archive folder `{prefix.decode('utf-8', 'replace')}`"
                           ": torch refuses the archive")
    version = next((e for name in (b".data/version", b"version") for e in _lookup(archive, prefix + name)[:1]), None)
    if version is None:
        ck.problems.append(f"{label}no `version` record: torch refuses the archive")
    else:
        text = _small(archive, version.name[len(prefix):], 64)
        number = _leading_int(text)
        if number is None:
            ck.problems.append(f"{label}the `{version.text}` record is not a number: torch refuses the archive")
        elif not MIN_VERSION <= number <= MAX_VERSION:
            ck.problems.append(f"{label}archive version {number} is outside the {MIN_VERSION}-{MAX_VERSION} "
                               "torch 2.13 reads: torch refuses the archive")
    byteorder = _small(archive, b"byteorder", 64) if _lookup(archive, prefix + b"byteorder") else b"little"
    if byteorder not in (b"little", b"big"):
        ck.problems.append(f"{label}the `byteorder` record is neither `little` nor `big`: torch refuses the file")
    alignment = _small(archive, b".storage_alignment", 64) if _lookup(archive, prefix + b".storage_alignment") else b"64"
    if alignment is None or not re.fullmatch(rb"\s*[+-]?\d+\s*", alignment):
        ck.problems.append(f"{label}the `.storage_alignment` record is not a number: torch refuses the file")
    for name in (b"data.pkl", b"byteorder", b".format_version", b".storage_alignment", b".data/serialization_id",
                 b".data/version", b"version"):
        for entry in _lookup(archive, prefix + name)[:1]:
            fault = zipdir.entry_fault(archive, entry)
            if fault is not None:
                ck.problems.append(f"{label}{fault}")


def _leading_int(text: Optional[bytes]) -> Optional[int]:
    """``std::stoll``: leading blanks, a sign, digits; whatever follows is ignored."""
    if text is None:
        return None
    match = re.match(rb"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else None


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


def storage_bytes(st: StorageInfo) -> Optional[int]:
    item = ITEMSIZE.get(st.dtype)
    if st.numel is None or item is None:
        return None
    if st.type_name in ("UntypedStorage", "TypedStorage"):
        return st.numel
    return st.numel * item


# -- torch.export archives (.pt2) --------------------------------------------------------

def _is_pt2(archive: zipdir.Archive) -> bool:
    return _small(archive, b"archive_format", 16) == b"pt2"


def _read_pt2(ck: Checkpoint, archive: zipdir.Archive, ctx: Context) -> None:
    """``torch.export.load`` (``load_pt2``): the program is JSON (``models/*.json``), its
    weights and constants raw tensor bytes unless the payload config says ``use_pickle``
    (then ``torch.load(weights_only=False)``), opaque constants ``pickle.loads``, TorchBind
    constants ``torch._C._pickle_load_obj``, sample inputs ``torch.load``. Every payload a
    loader unpickles is read as a file of its own; AOTInductor code is compiled code."""
    ck.format = "pt2"
    ck.not_checkpoint = None
    prefix = _prefix(archive) or b""
    names = {e.name: e for e in archive.entries}
    if any(n.startswith(prefix + b"data/aotinductor/") for n in names):
        ck.runs_code = ("an AOTInductor package: loading it (`torch._inductor.aoti_load_package`) runs the "
                        "compiled code (a shared library) it carries")
    models = [n[len(prefix) + 7:-5] for n in names if n.startswith(prefix + b"models/") and n.endswith(b".json")]
    configs = [(folder, model + suffix) for model in models for folder, suffix in (
        (b"data/weights/", b"_weights_config.json"), (b"data/constants/", b"_constants_config.json"))]
    pickled = []  # (record name, the loader that unpickles it)
    for folder, config_name in configs:
        config = _json_record(ck, archive, names.get(prefix + folder + config_name))
        entries = config.get("config") if isinstance(config, dict) else None
        for fqn, meta in (entries or {}).items() if isinstance(entries, dict) else ():
            if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
                continue
            path = meta["path_name"]
            record = prefix + folder + path.encode("utf-8", "replace")
            if folder == b"data/weights/" or path.startswith("tensor_"):
                if meta.get("use_pickle"):
                    pickled.append((record, "torch.load(weights_only=False)"))
            elif path.startswith("opaque_obj_"):
                pickled.append((record, "pickle.loads"))
            elif path.startswith("custom_obj_"):
                ck.unverified = (f"a torch.export archive with a TorchBind constant (`{fqn}`): "
                                 "`torch._C._pickle_load_obj` builds it, which this reader does not follow")
            else:
                ck.problems.append(f"constant `{fqn}` has the unsupported kind `{path}`: torch.export.load refuses it")
    # sample inputs and the legacy layout's payloads: weights_only=True, then False on failure
    fallback = "torch.load(weights_only=True, then False)"
    pickled += [(n, fallback) for n in names if n.startswith(prefix + b"data/sample_inputs/")]
    pickled += [(prefix + folder + model + b".pt", fallback) for model in models
                for folder in (b"data/weights/", b"data/constants/") if prefix + folder + model + b".pt" in names]
    for name, loader in dict.fromkeys(pickled):
        entry = names.get(name)
        if entry is None:
            ck.problems.append(f"`{name.decode('utf-8', 'replace')}` named in the payload config is missing")
            continue
        if entry.size > ctx.budget.limit():
            ck.unverified = ck.unverified or f"`{entry.text}` is beyond the reading budget: not checked"
            continue
        try:
            data = archive.read(entry, ctx.budget.limit())
        except zipdir.ZipError as exc:
            ck.problems.append(str(exc))
            continue
        ctx.load_nested(ck, f"`{entry.text}`", data, f"torch.export.load: {loader}")


def _json_record(ck: Checkpoint, archive: zipdir.Archive, entry: Optional[zipdir.Entry]):
    if entry is None:
        return {}
    try:
        return json.loads(archive.read(entry, 64 << 20).decode("utf-8"))
    except (zipdir.ZipError, UnicodeDecodeError, ValueError) as exc:
        ck.problems.append(f"`{entry.text}` cannot be read as JSON ({exc})")
        return {}
