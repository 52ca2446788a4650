"""Non-zip containers torch.load and pickle.load read as a stream of pickles: a raw pickle
(and pickles appended after it: a loop of ``pickle.load`` runs them too), torch's legacy
format (five pickles, then raw storages) and the torch<0.4 tar format."""

from __future__ import annotations

import struct
from typing import BinaryIO, Optional

from ckptlint.reader.checkpoint import MAX_PICKLE_BYTES, Checkpoint, Context, Pickle
from ckptlint.reader.opcodes import OPCODES
from ckptlint.reader.pickle_scan import ScanResult
from ckptlint.reader.records import class_of
from ckptlint.reader.torch_tables import ITEMSIZE, STORAGE_DTYPES

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_PICKLES = 1000  # pickles appended one after another; more is not checked (fail closed)
TEXT_PEEK = 1 << 16  # bytes looked at to say what a file that is not a checkpoint is


def read_pickle_stream(ck: Checkpoint, f: BinaryIO, head: bytes, size: int, ctx: Context, quiet: bool) -> None:
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
    first = ctx.scan(ck, "pickle 1 (byte 0)" if not quiet else "the file read as a pickle", f,
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
        ck.pickles[-1].weights_only = True
        _read_legacy(ck, f, size, ctx)
        return
    ck.root, ck.storages = first.root, first.storages
    if class_of(first.root) == "torch.distributed.checkpoint.metadata.Metadata":
        ck.format = "dcp-metadata"
    second = _read_appended(ck, f, size, first.end, ctx)
    if type(first.root) is int and second is not None and second.root == LEGACY_PROTOCOL:
        ck.problems.append("torch's legacy format with a wrong magic number (the file is corrupt): "
                           "torch.load refuses it")


def _names_a_module(p: Pickle) -> bool:
    """Does a pickle that failed name a global a loader could try to import?"""
    return any(all(part.isidentifier() for part in g.split(".")) for g in p.globals)


def _not_a_checkpoint(path: str, f: BinaryIO, size: int, head: bytes) -> str:
    """CKPT109's words for a file that holds no checkpoint: what it is when its content
    shows it (text: Python source, JSON), else its first bytes."""
    f.seek(0)
    data = f.read(TEXT_PEEK)
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


def _read_appended(ck: Checkpoint, f: BinaryIO, size: int, pos: int, ctx: Context) -> Optional[ScanResult]:
    """The pickles after the first; the second one's scan (None: there is none)."""
    second = None
    for n in range(2, MAX_PICKLES + 2):
        if pos >= size:
            return second
        f.seek(pos)
        result = ctx.scan(ck, f"pickle {n} (byte {pos})", f, quiet=True)
        if result is None:
            return second  # not a pickle (or failed after naming what it runs: recorded)
        second = second or result
        pos = result.end
    ck.pickles.append(Pickle(f"the bytes after byte {pos}",
                             error=f"more than {MAX_PICKLES} pickles one after another"))
    return second


def _read_legacy(ck: Checkpoint, f: BinaryIO, size: int, ctx: Context) -> None:
    ck.format = "legacy"
    results = []
    for where in ("protocol version", "system info", "main object", "storage keys"):
        result = ctx.scan(ck, f"legacy pickle ({where})", f, weights_only=True)
        if result is None:
            return
        results.append(result)
    version = results[0].root
    if type(version) is not int or version != LEGACY_PROTOCOL:
        said = f"is {version}" if type(version) is int else "is not a number"
        ck.problems.append(f"the legacy format's protocol version {said}, not {LEGACY_PROTOCOL}: torch.load refuses it")
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
        if st is not None and st.numel is not None and numel != st.numel:
            ck.problems.append(f"storage `{key}` holds {numel} elements, the pickle says {st.numel}: "
                               "torch.load refuses it")
            return
        pos += 8 + numel * item
        if pos > size:
            ck.problems.append(f"file ends inside storage `{key}` (truncated)")
            return
    for key in sorted(set(ck.storages) - set(order)):
        ck.problems.append(f"storage `{key}` named in the pickle is missing from the file")


# -- the torch < 0.4 tar format ---------------------------------------------------------


def torch_tar(f: BinaryIO):
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


def read_tar(ck: Checkpoint, f: BinaryIO, tar, ctx: Context) -> None:
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
            result = ctx.scan(ck, f"tar member `{name}`", data)
            if result is not None:
                ck.root = result.root
            return
        if not walk(ck, data, ctx):
            return


def _tar_pickle(ck: Checkpoint, where: str, data: bytes, pos: int, ctx: Context) -> Optional[ScanResult]:
    return ctx.scan(ck, where, data, start=pos)


def _tar_records(ck: Checkpoint, data: bytes, member: str, item: str, raw_size, ctx: Context) -> Optional[int]:
    """A member torch reads as a pickle counting records, then per record a pickle followed
    by ``raw_size(args, data)`` raw bytes. The position after the records, or None."""
    head = _tar_pickle(ck, f"tar member `{member}` (count)", data, 0, ctx)
    if head is None or not isinstance(head.root, int):
        return None
    pos = head.end
    for i in range(min(head.root, 1 << 20)):
        args = _tar_pickle(ck, f"tar member `{member}` ({item} {i})", data, pos, ctx)
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


def _tar_storages(ck: Checkpoint, data: bytes, ctx: Context) -> bool:
    pos = _tar_records(ck, data, "storages", "storage", _storage_bytes_after, ctx)
    return pos is not None and _tar_pickle(ck, "tar member `storages` (views)", data, pos, ctx) is not None


def _tar_tensors(ck: Checkpoint, data: bytes, ctx: Context) -> bool:
    return _tar_records(ck, data, "tensors", "tensor", _tensor_bytes_after, ctx) is not None
