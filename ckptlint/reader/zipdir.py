"""A zip archive as torch's reader sees it.

torch reads checkpoints with miniz (``PyTorchStreamReader``), not with Python's ``zipfile``,
and the two disagree on hostile archives: ``zipfile`` rejects a malformed extra field on any
record, shifts every offset when the central directory is not where the end record says, and
compares local and central names, while miniz ignores the first, reads offsets as written and
never looks at local names. torch also builds miniz without CRC checks. So this module follows
miniz's ``mz_zip_reader_read_central_dir`` / ``mz_zip_reader_file_stat`` /
``mz_zip_reader_extract_to_mem`` step by step, on a window ``[start, end)`` of a file (a
``.distcp`` shard holds several archives back to back, each read on its own byte range).

Nothing here decides which record torch opens: ``Archive.entries`` lists every record, and
callers scan every record torch could open (duplicates and case variants included).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, List, Optional, Tuple

EOCD_SIG = b"PK\x05\x06"
EOCD_SIZE = 22
Z64_LOCATOR_SIG = b"PK\x06\x07"
Z64_LOCATOR_SIZE = 20
Z64_EOCD_SIG = b"PK\x06\x06"
Z64_EOCD_SIZE = 56
CDH_SIG = b"PK\x01\x02"
CDH_SIZE = 46
LOCAL_SIG = b"PK\x03\x04"
LOCAL_SIZE = 30
U32_MAX = 0xFFFFFFFF
SEARCH_CHUNK = 4096


class ZipError(Exception):
    """torch's reader would refuse the archive (or this record of it)."""


@dataclass(frozen=True)
class Entry:
    index: int  # position in the central directory (record 0 names torch's archive folder)
    name: bytes
    method: int
    flags: int
    crc: int
    comp_size: int
    size: int
    header_offset: int  # of the local header, relative to the archive start
    is_directory: bool

    @property
    def text(self) -> str:
        return self.name.decode("utf-8", "replace")


@dataclass
class Archive:
    f: BinaryIO
    start: int
    size: int
    entries: List[Entry]
    _by_name: Optional[dict] = None

    def by_name(self) -> dict:
        """Records by lower-cased name (miniz's lookup ignores case), built once."""
        if self._by_name is None:
            self._by_name = {}
            for e in self.entries:
                self._by_name.setdefault(e.name.lower(), []).append(e)
        return self._by_name

    def data_offset(self, entry: Entry) -> int:
        """Where the record's bytes start (relative to the archive), from its local header."""
        header = self._read(entry.header_offset, LOCAL_SIZE)
        if len(header) != LOCAL_SIZE or header[:4] != LOCAL_SIG:
            raise ZipError(f"record `{entry.text}`: no local header at offset {entry.header_offset}")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        offset = entry.header_offset + LOCAL_SIZE + name_len + extra_len
        if offset + entry.comp_size > self.size:
            raise ZipError(f"record `{entry.text}` extends past the end of the archive (truncated)")
        return offset

    def read(self, entry: Entry, limit: int) -> bytes:
        """The record's content as ``mz_zip_reader_extract_to_mem`` gives it (no CRC check)."""
        if entry.is_directory or entry.comp_size == 0:
            return b""
        if entry.flags & 0x61:  # encrypted, strong encryption, compressed patch
            raise ZipError(f"record `{entry.text}` is encrypted")
        if entry.method not in (0, 8):
            raise ZipError(f"record `{entry.text}` uses compression method {entry.method}")
        if entry.size > limit:
            raise ZipError(f"record `{entry.text}` is larger than the {limit >> 20} MiB limit")
        offset = self.data_offset(entry)
        if entry.method == 0:
            data = self._read(offset, entry.size)
            if len(data) != entry.size:
                raise ZipError(f"record `{entry.text}` is truncated")
            return data
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(self._read(offset, entry.comp_size), entry.size + 1)
        except zlib.error as exc:
            raise ZipError(f"record `{entry.text}` does not inflate ({exc})") from exc
        if len(data) != entry.size or not inflater.eof:
            raise ZipError(f"record `{entry.text}` inflates to a different size than recorded")
        return data

    def _read(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size:
            return b""
        self.f.seek(self.start + offset)
        return self.f.read(min(n, self.size - offset))


def entry_fault(archive: Archive, entry: Entry) -> Optional[str]:
    """Why miniz would refuse to read this record (torch reads it without reading its
    data here), or None: encryption, a method other than stored or deflate, no local
    header where the entry says, data past the end."""
    if entry.is_directory and entry.size:
        return f"record `{entry.text}` is marked as a directory: torch reads none of its bytes"
    if entry.flags & 0x61:
        return f"record `{entry.text}` is marked encrypted: torch refuses to read it"
    if entry.method not in (0, 8):
        return f"record `{entry.text}` uses compression method {entry.method}: torch refuses to read it"
    try:
        archive.data_offset(entry)
    except ZipError as exc:
        return f"{exc}: torch refuses to read it"
    return None


def open_archive(f: BinaryIO, start: int, end: int) -> Archive:
    """miniz's reading of the central directory of the archive in ``[start, end)``."""
    size = end - start
    if size < EOCD_SIZE:
        raise ZipError("too small for a zip archive")
    archive = Archive(f, start, size, [])
    eocd_at = _find_eocd(archive)
    eocd = archive._read(eocd_at, EOCD_SIZE)
    total, this_disk_entries = struct.unpack_from("<HH", eocd, 10)[0], struct.unpack_from("<H", eocd, 8)[0]
    this_disk, cdir_disk = struct.unpack_from("<HH", eocd, 4)
    cdir_size, cdir_ofs = struct.unpack_from("<II", eocd, 12)
    z64 = _zip64_record(archive, eocd_at)
    if z64 is not None:
        locator, record = z64
        if struct.unpack_from("<Q", record, 4)[0] < Z64_EOCD_SIZE - 12:
            raise ZipError("corrupt zip64 end record")
        if struct.unpack_from("<I", locator, 16)[0] != 1:
            raise ZipError("multi-disk archive")
        total, this_disk_entries = struct.unpack_from("<QQ", record, 32)[0], struct.unpack_from("<Q", record, 24)[0]
        if total > U32_MAX or this_disk_entries > U32_MAX:
            raise ZipError("too many records")
        cdir_size64 = struct.unpack_from("<Q", record, 40)[0]
        if cdir_size64 > U32_MAX:
            raise ZipError("central directory too large")
        cdir_size = cdir_size64
        this_disk, cdir_disk = struct.unpack_from("<II", record, 16)
        cdir_ofs = struct.unpack_from("<Q", record, 48)[0]
    if total != this_disk_entries:
        raise ZipError("multi-disk archive")
    if (this_disk | cdir_disk) != 0 and (this_disk != 1 or cdir_disk != 1):
        raise ZipError("multi-disk archive")
    if cdir_size < total * CDH_SIZE or cdir_ofs + cdir_size > size:
        raise ZipError("central directory out of bounds (truncated?)")
    directory = archive._read(cdir_ofs, cdir_size)
    if len(directory) != cdir_size:
        raise ZipError("central directory truncated")
    archive.entries = _entries(directory, total, this_disk, size)
    return archive


def _find_eocd(archive: Archive) -> int:
    """The last end-of-central-directory signature with room for the record after it,
    searched backwards at most ~64 KiB, as ``mz_zip_reader_locate_header_sig``."""
    size = archive.size
    cur = max(size - SEARCH_CHUNK, 0)
    while True:
        buf = archive._read(cur, min(SEARCH_CHUNK, size - cur))
        i = len(buf) - 4
        while i >= 0:
            i = buf.rfind(EOCD_SIG, 0, i + 4)
            if i < 0:
                break
            if size - (cur + i) >= EOCD_SIZE:
                return cur + i
            i -= 1
        if cur == 0 or size - cur >= 0xFFFF + EOCD_SIZE:
            raise ZipError("no end of central directory record")
        cur = max(cur - (SEARCH_CHUNK - 3), 0)


def _zip64_record(archive: Archive, eocd_at: int):
    if eocd_at < Z64_LOCATOR_SIZE + Z64_EOCD_SIZE:
        return None
    locator = archive._read(eocd_at - Z64_LOCATOR_SIZE, Z64_LOCATOR_SIZE)
    if len(locator) != Z64_LOCATOR_SIZE or locator[:4] != Z64_LOCATOR_SIG:
        return None
    at = struct.unpack_from("<Q", locator, 8)[0]
    if at > archive.size - Z64_EOCD_SIZE:
        raise ZipError("zip64 end record out of bounds")
    record = archive._read(at, Z64_EOCD_SIZE)
    if len(record) == Z64_EOCD_SIZE and record[:4] == Z64_EOCD_SIG:
        return locator, record
    return None


def _entries(directory: bytes, total: int, this_disk: int, size: int) -> List[Entry]:
    out: List[Entry] = []
    pos, left = 0, len(directory)
    for index in range(total):
        if left < CDH_SIZE or directory[pos:pos + 4] != CDH_SIG:
            raise ZipError(f"corrupt central directory record {index}")
        (flags, method, crc, comp, usize, name_len, extra_len, comment_len,
         disk, external, local) = _cdh_fields(directory, pos)
        if name_len + extra_len + comment_len + CDH_SIZE > left:
            raise ZipError(f"corrupt central directory record {index}")
        name = directory[pos + CDH_SIZE: pos + CDH_SIZE + name_len]
        extra = directory[pos + CDH_SIZE + name_len: pos + CDH_SIZE + name_len + extra_len]
        _check_record(directory, pos, index, comp, usize, local, extra, disk, this_disk, flags, size)
        stat = _zip64_stat(extra, usize, comp, local, index) if max(comp, usize, local) == U32_MAX else None
        if stat is not None:
            usize, comp, local = stat
        is_dir = name.endswith(b"/") or bool(external & 0x10)
        out.append(Entry(index, name, method, flags, crc, comp, usize, local, is_dir))
        step = CDH_SIZE + name_len + extra_len + comment_len
        pos += step
        left -= step
    return out


def _cdh_fields(d: bytes, pos: int):
    flags, method = struct.unpack_from("<HH", d, pos + 8)
    crc, comp, usize = struct.unpack_from("<III", d, pos + 16)
    name_len, extra_len, comment_len, disk = struct.unpack_from("<HHHH", d, pos + 28)
    external, local = struct.unpack_from("<II", d, pos + 38)
    return flags, method, crc, comp, usize, name_len, extra_len, comment_len, disk, external, local


def _check_record(d, pos, index, comp, usize, local, extra, disk, this_disk, flags, size) -> None:
    """The per-record sanity checks of ``mz_zip_reader_read_central_dir`` (torch's copy)."""
    if extra and max(comp, usize, local) == U32_MAX:
        at = _zip64_field(extra, index)
        if at is not None:  # torch's copy reads on to the end of the extra data
            rest = extra[at + 4:]
            values = iter(struct.unpack_from("<%dQ" % (len(rest) // 8), rest))
            usize = next(values, usize) if usize == U32_MAX else usize
            comp = next(values, comp) if comp == U32_MAX else comp
            local = next(values, local) if local == U32_MAX else local
    if comp != U32_MAX and usize != U32_MAX:
        # miniz reads 32 bits at the method offset: method and modification time together
        if (struct.unpack_from("<I", d, pos + 10)[0] == 0 and usize != comp) or (usize and not comp):
            raise ZipError(f"corrupt central directory record {index} (sizes)")
    if disk == 0xFFFF or (disk != this_disk and disk != 1):
        raise ZipError("multi-disk archive")
    if comp != U32_MAX and local + LOCAL_SIZE + comp > size:
        raise ZipError(f"record {index} extends past the end of the archive (truncated)")
    if flags & 0x2000:
        raise ZipError(f"record {index} has a masked local header (encrypted)")


def _zip64_field(extra: bytes, index: int) -> Optional[int]:
    """Where the zip64 extra field's header is, walking the fields as miniz does (a field
    that overruns the extra data is an error); None when there is none."""
    pos = 0
    while pos < len(extra):
        if len(extra) - pos < 4:
            raise ZipError(f"corrupt extra field in record {index}")
        field_id, field_size = struct.unpack_from("<HH", extra, pos)
        if field_size + 4 > len(extra) - pos:
            raise ZipError(f"corrupt extra field in record {index}")
        if field_id == 1:
            return pos
        pos += 4 + field_size
    return None


def _zip64_data(extra: bytes, index: int) -> Optional[bytes]:
    at = _zip64_field(extra, index)
    if at is None:
        return None
    (field_size,) = struct.unpack_from("<H", extra, at + 2)
    return extra[at + 4: at + 4 + field_size]


def _zip64_stat(extra: bytes, usize: int, comp: int, local: int, index: int):
    """``mz_zip_file_stat_internal``: the 64-bit values, each present only when its 32-bit
    field is 0xFFFFFFFF, in the order uncompressed size, compressed size, offset."""
    data = _zip64_data(extra, index)
    if data is None:
        return usize, comp, local
    pos = 0
    values = []
    for value in (usize, comp, local):
        if value == U32_MAX:
            if len(data) - pos < 8:
                raise ZipError(f"corrupt zip64 field in record {index}")
            value = struct.unpack_from("<Q", data, pos)[0]
            pos += 8
        values.append(value)
    return tuple(values)


DESCRIPTOR_SIG = b"PK\x07\x08"


def _descriptor_at(f: BinaryIO, data_start: int, length: int) -> Optional[Tuple[int, int]]:
    """The data descriptor right after ``length`` bytes of data, if it is there."""
    f.seek(data_start + length)
    head = f.read(24)
    if head[:4] != DESCRIPTOR_SIG:
        return None
    if len(head) >= 16 and struct.unpack_from("<I", head, 8)[0] == length:
        return data_start + length + 16, length
    if len(head) == 24 and struct.unpack_from("<Q", head, 8)[0] == length:
        return data_start + length + 24, length
    return None


def _descriptor_end(f: BinaryIO, data_start: int, file_size: int) -> Optional[Tuple[int, int]]:
    """(end of the data descriptor, compressed size) after a record whose local header has
    no sizes: the first descriptor signature whose compressed size (32- or 64-bit) equals its
    distance from the data start."""
    pos = data_start
    tail = b""
    step = 64 << 10  # growing to 1 MiB: most records end soon (data.pkl), and a URL fetches what is read
    while pos < file_size:
        f.seek(pos)
        chunk = tail + f.read(step)
        step = min(step * 2, 1 << 20)
        base = pos - len(tail)
        at = chunk.find(DESCRIPTOR_SIG)
        while at >= 0:
            f.seek(base + at + 8)
            sizes = f.read(16)
            length = base + at - data_start
            if len(sizes) >= 8 and struct.unpack_from("<I", sizes)[0] == length:
                return base + at + 16, length
            if len(sizes) == 16 and struct.unpack_from("<Q", sizes)[0] == length:
                return base + at + 24, length
            at = chunk.find(DESCRIPTOR_SIG, at + 1)
        pos = base + len(chunk)
        tail = chunk[-3:]
    return None


@dataclass(frozen=True)
class LocalRecord:
    """A record as its local header lays it out (what a central directory may not list)."""

    name: bytes
    method: int
    data_offset: int  # absolute, in the file
    comp_size: int

    @property
    def text(self) -> str:
        return self.name.decode("utf-8", "replace")


def walk_archive(f: BinaryIO, start: int, file_size: int, records: Optional[List[LocalRecord]] = None,
                 expected=None) -> Optional[int]:
    """Where the archive that starts at ``start`` ends, walking its records forward (local
    headers, central directory, zip64 records, end record) as ``torch.save`` lays them out;
    the local records met on the way are appended to ``records``. None when the walk meets
    anything else (garbage, a data descriptor it cannot find).

    A record written to a stream has its size after its data; ``expected(name)`` may say
    what size to try first (a tensor's bytes, from ``data.pkl``), so the walk does not have
    to search the data for the descriptor."""
    pos = start
    while pos + 4 <= file_size:
        f.seek(pos)
        head = f.read(CDH_SIZE)
        sig = head[:4]
        if sig == LOCAL_SIG and len(head) >= LOCAL_SIZE:
            flags, method = struct.unpack_from("<HH", head, 6)
            comp = struct.unpack_from("<I", head, 18)[0]
            name_len, extra_len = struct.unpack_from("<HH", head, 26)
            data = pos + LOCAL_SIZE + name_len + extra_len
            f.seek(pos + LOCAL_SIZE)
            name = f.read(name_len)
            if comp == U32_MAX:
                field = _zip64_data(f.read(extra_len), -1)
                if field is None or len(field) < 16:
                    return None
                comp = struct.unpack_from("<Q", field, 8)[0]
                end = data + comp
            elif flags & 0x08 and comp == 0:  # written to a stream: sizes follow the data
                guess = expected(name) if expected is not None else None
                found = _descriptor_at(f, data, guess) if guess is not None else None
                found = found or _descriptor_end(f, data, file_size)
                if found is None:
                    return None
                end, comp = found
            else:
                end = data + comp
            if records is not None and data + comp <= file_size:
                records.append(LocalRecord(name, method, data, comp))
            pos = end
        elif sig == CDH_SIG and len(head) == CDH_SIZE:
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", head, 28)
            pos += CDH_SIZE + name_len + extra_len + comment_len
        elif sig == Z64_EOCD_SIG:
            f.seek(pos + 4)
            (record_size,) = struct.unpack("<Q", f.read(8))
            pos += 12 + record_size
        elif sig == Z64_LOCATOR_SIG:
            pos += Z64_LOCATOR_SIZE
        elif sig == EOCD_SIG and len(head) >= EOCD_SIZE:
            (comment_len,) = struct.unpack_from("<H", head, 20)
            end = pos + EOCD_SIZE + comment_len
            return end if end <= file_size else None
        else:
            return None
    return None


def read_local(f: BinaryIO, record: LocalRecord, limit: int) -> bytes:
    """A local record's content (stored, or deflated up to ``limit`` bytes)."""
    if record.comp_size > limit and record.method == 0:
        raise ZipError(f"record `{record.text}` is larger than the {limit >> 20} MiB limit")
    f.seek(record.data_offset)
    raw = f.read(min(record.comp_size, limit))
    if record.method == 0:
        return raw
    if record.method != 8:
        raise ZipError(f"record `{record.text}` uses compression method {record.method}")
    try:
        return zlib.decompressobj(-15).decompress(raw, limit)
    except zlib.error as exc:
        raise ZipError(f"record `{record.text}` does not inflate ({exc})") from exc
