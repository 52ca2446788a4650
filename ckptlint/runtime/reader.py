"""A torch-free checkpoint reader.

Recognises torch zip archives (any top folder), the legacy (non-zip) stream, raw pickles,
safetensors files, Hugging Face ``*.index.json`` sharded checkpoints and (for security only)
the torch<0.4 tar format. It parses pickles
with :mod:`ckptlint.runtime.pickle_scan` (never unpickles), never reads tensor bytes, and
never raises for a bad file: everything wrong ends up in ``Checkpoint.problems`` (CKPT109)
or ``Checkpoint.pickle_error`` (fail closed: CKPT101 + CKPT109).

Zip CRCs: every record except tensor storages is CRC-checked (that includes ``data.pkl``).
Storage records are checked for presence and size against the pickle; their CRCs are only
checked with ``data_crc=True`` (streamed in 1 MiB chunks), because that means reading every
tensor byte, which is what the reader is designed never to need.
"""

from __future__ import annotations

import json
import os
import pickletools
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ckptlint.runtime.pickle_scan import ScanResult, scan
from ckptlint.runtime.records import PDict, PickleScanError, StorageInfo, TensorInfo
from ckptlint.runtime.torch_tables import ITEMSIZE

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_PICKLE_BYTES = 1 << 30
MAX_SAFETENSORS_HEADER = 100 << 20
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
class Checkpoint:
    path: str
    format: str = "unknown"  # zip | legacy | pickle | safetensors | sharded | unknown
    globals: List[str] = field(default_factory=list)
    root: Any = None
    storages: Dict[str, StorageInfo] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)  # integrity faults: CKPT109
    crc_failed: bool = False
    pickle_error: Optional[str] = None  # could not prove the pickle safe: CKPT101 (+109)
    not_checkpoint: Optional[str] = None  # not a checkpoint at all: CKPT109 only
    unverified: Optional[str] = None  # a format whose pickles are not all checked: CKPT101
    records: List[str] = field(default_factory=list)
    archive_version: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)  # safetensors __metadata__
    shards: List["Checkpoint"] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.not_checkpoint is None and not self.problems and self.pickle_error is None


def read_checkpoint(path, data_crc: bool = False) -> Checkpoint:
    path = os.path.abspath(os.fspath(path))
    ck = Checkpoint(path)
    try:
        _read(ck, data_crc)
    except PickleScanError as exc:
        ck.pickle_error = str(exc)
    except MemoryError:
        ck.pickle_error = "ran out of memory while parsing"
    except RecursionError:
        ck.pickle_error = "nesting too deep"
    except OSError as exc:
        ck.not_checkpoint = f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - never crash on a file; never fail open
        reason = f"reader failure ({type(exc).__name__}: {exc})"
        if ck.format in ("zip", "legacy", "pickle", "tar") and ck.root is None:
            ck.pickle_error = reason  # the pickle was not fully checked: CKPT101 + CKPT109
        else:
            ck.problems.append(reason)
    return ck


def _read(ck: Checkpoint, data_crc: bool) -> None:
    if not os.path.exists(ck.path):
        ck.not_checkpoint = "file does not exist"
        return
    if os.path.isdir(ck.path):
        ck.not_checkpoint = "is a directory, not a checkpoint file"
        return
    size = os.path.getsize(ck.path)
    if ck.path.endswith(".index.json"):
        _read_sharded(ck, data_crc)
        return
    if size == 0:
        ck.not_checkpoint = "empty file"
        return
    with open(ck.path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        _read_zip(ck, data_crc)
    elif head.startswith(b"version https://git-lfs"):
        ck.not_checkpoint = "a git-LFS pointer file, not the checkpoint (run `git lfs pull`)"
    elif _looks_like_safetensors(head, size):
        _read_safetensors(ck, size)
    elif ck.path.endswith(".safetensors"):
        ck.not_checkpoint = "bad safetensors header"
    elif head.lstrip()[:1] == b"<" and b"<html" in head.lower() or head.lstrip().lower().startswith(b"<!doctype"):
        ck.not_checkpoint = "an HTML page, not a checkpoint (a failed download?)"
    elif _is_torch_tar(ck.path):
        _read_tar(ck)
    else:
        _read_pickle_stream(ck, head, size)


# -- zip archives ------------------------------------------------------------------------


def _read_zip(ck: Checkpoint, data_crc: bool) -> None:
    try:
        zf = zipfile.ZipFile(ck.path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        ck.format = "zip"
        ck.problems.append(f"corrupt or truncated zip archive ({exc})")
        return
    with zf, open(ck.path, "rb") as raw:
        infos = zf.infolist()
        ck.records = sorted(i.filename for i in infos)
        pkl = sorted(n for n in ck.records if n == "data.pkl" or n.endswith("/data.pkl"))
        if not pkl:
            ck.not_checkpoint = "a zip archive without data.pkl, not a torch checkpoint"
            return
        ck.format = "zip"
        prefix = pkl[0][: -len("data.pkl")]
        data_dir = prefix + "data/"
        by_name = {i.filename: i for i in infos}
        file_size = os.path.getsize(ck.path)
        for info in infos:
            if info.header_offset + info.compress_size > file_size:
                ck.problems.append(f"record `{info.filename}` extends past the end of the file (truncated)")
        # CRC of every record that is not tensor data (data.pkl first; parsed below).
        for info in infos:
            is_storage = info.filename.startswith(data_dir)
            if is_storage and not data_crc:
                continue
            if info.filename == pkl[0]:
                continue
            _check_crc(ck, zf, raw, info)
        version = by_name.get(prefix + "version") or by_name.get(prefix + ".data/version")
        if version is not None and version.file_size < 64:
            ck.archive_version = _member_bytes(zf, raw, version).decode("ascii", "replace").strip()
        info = by_name[pkl[0]]
        if info.file_size > MAX_PICKLE_BYTES:
            ck.pickle_error = "data.pkl is larger than the 1 GiB parsing limit"
            return
        data = _member_bytes(zf, raw, info)
        if zlib.crc32(data) & 0xFFFFFFFF != info.CRC:
            ck.crc_failed = True
            ck.problems.append(f"CRC mismatch in `{info.filename}` (the pickle is corrupt)")
        for other in ck.records:  # e.g. TorchScript's constants.pkl: torch.load reads them too
            if other.endswith(".pkl") and other != pkl[0]:
                if by_name[other].file_size > MAX_PICKLE_BYTES:
                    raise PickleScanError(f"`{other}` is larger than the 1 GiB parsing limit")
                _scan_into(ck, _member_bytes(zf, raw, by_name[other]))
        result = _scan_into(ck, data)
        ck.root = result.root
        ck.storages = result.storages
        for key in sorted(result.storages):
            st = result.storages[key]
            rec = by_name.get(data_dir + key)
            if rec is None:
                ck.problems.append(f"storage `{key}` named in data.pkl is missing from the archive")
                continue
            need = _storage_bytes(st)
            if need is not None and rec.file_size < need:
                ck.problems.append(
                    f"storage `{key}` holds {rec.file_size} bytes, the pickle needs {need} (truncated)"
                )


def _member_bytes(zf: zipfile.ZipFile, raw, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes without zipfile's CRC exception (the caller compares CRCs)."""
    if info.compress_type == zipfile.ZIP_STORED:
        raw.seek(info.header_offset)
        header = raw.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        raw.seek(info.header_offset + 30 + name_len + extra_len)
        return raw.read(info.compress_size)
    with zf.open(info) as member:
        member._expected_crc = None  # we compare CRCs ourselves
        return member.read()


def _check_crc(ck: Checkpoint, zf, raw, info: zipfile.ZipInfo) -> None:
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            raw.seek(info.header_offset)
            header = raw.read(30)
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            raw.seek(info.header_offset + 30 + name_len + extra_len)
            crc, left = 0, info.compress_size
            while left > 0:
                chunk = raw.read(min(CHUNK, left))
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
            ok = left == 0 and crc & 0xFFFFFFFF == info.CRC
        else:
            with zf.open(info) as member:
                while member.read(CHUNK):
                    pass
            ok = True
    except (zipfile.BadZipFile, struct.error, OSError, EOFError, zlib.error):
        ok = False
    if not ok:
        ck.crc_failed = True
        ck.problems.append(f"CRC mismatch in `{info.filename}`")


def _storage_bytes(st: StorageInfo) -> Optional[int]:
    item = ITEMSIZE.get(st.dtype)
    if st.numel is None or item is None:
        return None
    if st.type_name in ("UntypedStorage", "TypedStorage"):
        return st.numel
    return st.numel * item


def _scan_into(ck: Checkpoint, data) -> ScanResult:
    try:
        result = scan(data, MAX_PICKLE_BYTES)
    except PickleScanError as exc:
        for g in getattr(exc, "globals", []):
            if g not in ck.globals:
                ck.globals.append(g)
        raise
    for g in result.globals:
        if g not in ck.globals:
            ck.globals.append(g)
    return result


# -- legacy stream and raw pickles -------------------------------------------------------


def _read_pickle_stream(ck: Checkpoint, head: bytes, size: int) -> None:
    first = head[:1]
    try:
        op = pickletools.code2op.get(first.decode("latin-1"))
    except Exception:  # pragma: no cover
        op = None
    if op is None:
        ck.not_checkpoint = f"not a checkpoint (unrecognised content starting {head[:16]!r})"
        return
    with open(ck.path, "rb") as f:
        try:
            first_scan = _scan_into(ck, f)
        except PickleScanError:
            # Only something that names code (or says it is a pickle) is treated as one.
            says_pickle = first == b"\x80" and head[1:2] <= b"\x05"
            if not (says_pickle or ck.globals or first in (b"c", b"i")):
                ck.not_checkpoint = f"not a checkpoint (unrecognised content starting {head[:16]!r})"
                ck.globals.clear()
                return
            ck.format = "pickle"
            raise
        if first_scan.root != LEGACY_MAGIC or isinstance(first_scan.root, bool):
            ck.format = "pickle"
            ck.root = first_scan.root
            ck.storages = first_scan.storages
            return
        ck.format = "legacy"
        _scan_into(ck, f)  # protocol version
        _scan_into(ck, f)  # sys info
        main = _scan_into(ck, f)
        keys = _scan_into(ck, f)
        ck.root = main.root
        ck.storages = main.storages
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

def _is_torch_tar(path: str) -> bool:
    try:  # "r:" only, as torch opens it (is_tarfile would also try every compression)
        with tarfile.open(path, mode="r:") as tar:
            return "pickle" in tar.getnames()
    except (tarfile.TarError, OSError, ValueError):
        return False


def _read_tar(ck: Checkpoint) -> None:
    """torch.load unpickles this format only with weights_only=False (weights_only=True
    refuses it). Its storages/tensors members interleave pickles with raw data; only the
    whole-pickle members are scanned, so the file is never reported as proven safe."""
    ck.format = "tar"
    ck.unverified = ("the torch<0.4 tar checkpoint format: `torch.load(weights_only=True)` refuses it "
                     "and `weights_only=False` unpickles it")
    with tarfile.open(ck.path, mode="r:") as tar:
        for name in ("sys_info", "pickle"):
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            if member.size > MAX_PICKLE_BYTES:
                raise PickleScanError(f"tar member `{name}` is larger than the parsing limit")
            handle = tar.extractfile(member)
            if handle is None:
                continue
            result = _scan_into(ck, handle.read())
            if name == "pickle":
                ck.root = result.root


# -- safetensors -------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _read_safetensors(ck: Checkpoint, size: int) -> None:
    ck.format = "safetensors"
    with open(ck.path, "rb") as f:
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


def _read_sharded(ck: Checkpoint, data_crc: bool) -> None:
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
        shard = read_checkpoint(os.path.join(base, shard_name), data_crc)
        ck.shards.append(shard)
        if not shard.readable:
            continue
        tensors = shard.root if isinstance(shard.root, dict) else {}
        for key in sorted(k for k, v in weight_map.items() if v == shard_name):
            if key in tensors:
                root[key] = tensors[key]
            else:
                shard.problems.append(f"index names `{key}` but the shard does not contain it")
    ck.root = root
