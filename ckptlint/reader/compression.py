"""Compressed streams, undone as their loaders undo them.

Who decompresses what, by content (never by file name):

- ``joblib.load`` tests prefixes in this order: ``ZF`` (its pre-0.9.3 zlib format), ``x``
  (zlib), ``1f 8b`` (gzip), ``BZ`` (bz2), ``5d 00`` (lzma), ``fd 37 7a 58 5a`` (xz),
  ``04 22 4d 18`` (lz4). Its own zlib/gzip reader stops at the end of the first stream; bz2,
  lzma, xz and lz4 go through Python's multi-stream readers (``lzma.LZMAFile`` with
  ``FORMAT_AUTO`` for both lzma and xz: any dictionary size liblzma accepts, not only the
  default ``5d 00 00 80 00``).
- ``pickle.load(gzip.open(...))`` and its kin: every gzip member, every bz2/xz stream.
- DCP's ``stream.zstd`` transform (``zstandard`` or ``pyzstd``): every frame of the item.

So a stream is decompressed once, all of it, and the end of its first stream is kept:
``Decompressed.alternatives()`` gives the contents some loader sees (first stream only, all
streams), each to be judged. Output is bounded by ``limit`` (a bomb stops there, with an
error) and spills to a temporary file past ``SPILL`` bytes, so memory stays small; input is
read in chunks from a file-like object (``seek``/``read``), never whole.

A codec whose module is missing (``lz4``, ``zstandard``) raises ``CodecMissing`` naming the
module: the caller says the file was not checked, never passes it.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, List, Optional, Tuple

CHUNK = 1 << 16  # input read per step: with max_length, output per step stays bounded too
SPILL = 32 << 20  # decompressed bytes kept in memory before spilling to a temporary file
LZ4_MAGIC = b"\x04\x22\x4d\x18"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"

# codecs some loader reads only the first stream of (others read them all), and which
FIRST_ONLY_READERS = {"gzip": "joblib.load", "lz4": "lz4.frame.decompress",
                      "zstd": "zstandard's one-shot decompress"}


def codec_of_transform(descriptor: str) -> Optional[str]:
    """The codec of a DCP transform descriptor (`stream.zstd/1` in `_StorageInfo.
    transform_descriptors`); None for a transform this module does not know (DCP raises on
    an unknown name, and a version other than 1.x)."""
    name, _, version = descriptor.partition("/")
    return "zstd" if name == "stream.zstd" and version.partition(".")[0] == "1" else None


class CodecMissing(Exception):
    """The Python module a codec needs is not installed."""

    def __init__(self, codec: str, module: str):
        super().__init__(f"{codec}-compressed: checking it needs the Python module `{module}` "
                         f"(`pip install {module}`)")
        self.codec = codec
        self.module = module


class NotCompressed(Exception):
    """The bytes do not start a stream of that codec (nothing decoded)."""


@dataclass
class Decompressed:
    codec: str
    content: BinaryIO  # seekable, holds every stream's output, back to back
    size: int
    first_end: int  # where the first stream's output ends
    streams: int
    error: Optional[str] = None  # decoding stopped early (truncated, corrupt, over the limit)
    over_limit: bool = False  # it stopped at the limit (the stream itself may be fine)

    def alternatives(self) -> List[Tuple[str, int, int]]:
        """(label, start, end) of each content a loader reads: all streams, and the first
        alone when some loader stops there and there is more."""
        out = [("", 0, self.size)]
        if self.streams > 1 and self.codec in FIRST_ONLY_READERS:
            out.append((f"first stream only, as {FIRST_ONLY_READERS[self.codec]} reads it", 0, self.first_end))
        return out

    def file(self) -> BinaryIO:
        """The content as a plain file object: in memory while small (a BytesIO), else the
        temporary file it spilled to (which the pickle scan maps instead of reading)."""
        inner = getattr(self.content, "_file", None)
        return inner if inner is not None else self.content

    def read(self, start: int = 0, end: Optional[int] = None) -> bytes:
        self.content.seek(start)
        return self.content.read((self.size if end is None else end) - start)


def codecs_of(head: bytes) -> List[str]:
    """Every codec whose header ``head`` (the file's first bytes) carries, as the loaders
    above test it; usually none or one."""
    out = []
    if head.startswith(b"\x1f\x8b"):
        out.append("gzip")
    if head[:1] == b"x" and len(head) >= 2 and (head[0] << 8 | head[1]) % 31 == 0:
        out.append("zlib")
    if head.startswith(b"ZF"):
        out.append("joblib-zfile")
    if head.startswith(b"BZ"):
        out.append("bz2")
    if head.startswith(XZ_MAGIC):
        out.append("xz")
    elif lzma_alone_header(head):
        out.append("lzma")
    if head.startswith(LZ4_MAGIC):
        out.append("lz4")
    if head.startswith(ZSTD_MAGIC):
        out.append("zstd")
    return out


def lzma_alone_header(head: bytes) -> bool:
    """The 13-byte `.lzma` header liblzma's automatic decoder accepts (what ``lzma.open`` and
    joblib use): valid lc/lp/pb, a dictionary size of 2^n or 2^n + 2^(n-1), and an unknown
    or plausible uncompressed size."""
    if len(head) < 13 or head[0] > 224:
        return False
    props = head[0]
    lc, lp = props % 9, (props // 9) % 5
    if lc + lp > 4:
        return False
    (dict_size,) = struct.unpack_from("<I", head, 1)
    if dict_size != 0xFFFFFFFF:
        d = max(dict_size - 1, 0)
        d |= d >> 2
        d |= d >> 3
        d |= d >> 4
        d |= d >> 8
        d |= d >> 16
        if dict_size and d + 1 != dict_size:
            return False
    (usize,) = struct.unpack_from("<Q", head, 5)
    return usize == 0xFFFFFFFFFFFFFFFF or usize < 1 << 38


def decompress(src: BinaryIO, codec: str, limit: int, start: int = 0, end: Optional[int] = None) -> Decompressed:
    """Decode the ``codec`` streams in ``src[start:end]`` back to back, at most ``limit``
    output bytes. Raises CodecMissing, or NotCompressed when not even the first stream
    starts. Trailing bytes that do not start another stream end the content (Python's
    readers ignore them); a stream cut short or corrupt sets ``error``."""
    if codec == "joblib-zfile":
        start = _zfile_data_start(src, start)
        codec = "zlib"
    make = _factory(codec)
    reader = _Input(src, start, end)
    out: Any = tempfile.SpooledTemporaryFile(max_size=SPILL)
    total, first_end, streams, error, over = 0, None, 0, None, False
    d = make()
    d.feed(reader.next(d.chunk))
    fresh = True  # the current stream has produced nothing and consumed nothing yet
    while True:
        try:
            part = d.pull(max(limit + 1 - total, 1))
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, RuntimeError) as exc:
            if streams == 0 and fresh:
                raise NotCompressed(f"not a {codec} stream ({exc})") from None
            if not fresh:
                error = f"corrupt {codec} data ({exc})"
            break  # a failing next stream is trailing garbage
        fresh = False
        if part:
            out.write(part)
            total += len(part)
        if total > limit:
            error = f"decompresses to more than {limit >> 20} MiB (the limit)"
            total, over = limit, True
            break
        if d.eof:
            streams += 1
            first_end = total if first_end is None else first_end
            rest = d.unused_data or reader.next(d.chunk)
            if codec == "zlib" or not rest:
                break  # zlib.decompress and joblib read one zlib stream
            d = make()
            d.feed(rest)
            fresh = True
            continue
        if d.wants_input:
            chunk = reader.next(d.chunk)
            if chunk:
                d.feed(chunk)
            elif d.drained:
                error = f"the {codec} stream is truncated"
                break
            else:
                d.drained = True  # one more call with no input: what the decoder still holds
    out.truncate(total)
    out.seek(0)
    return Decompressed(codec, out, total, total if first_end is None else first_end, max(streams, 1), error, over)


ZFILE_HEADER = 2 + 19  # `ZF` + the length in hex, padded to the width of hex(2**64)


def _zfile_data_start(src: BinaryIO, start: int) -> int:
    """joblib's pre-0.9.3 z-file: `ZF`, the length in hex, maybe a space, then zlib data."""
    src.seek(start)
    header = src.read(ZFILE_HEADER + 1)
    try:
        int(header[2:ZFILE_HEADER], 16)
    except ValueError:
        raise NotCompressed("not a joblib z-file (bad length header)") from None
    return start + ZFILE_HEADER + (header[ZFILE_HEADER:] == b" ")


class _Input:
    """The compressed bytes, read in chunks (smaller for codecs whose decoder has no output
    bound per call)."""

    def __init__(self, src: BinaryIO, start: int, end: Optional[int]):
        self.src, self.pos, self.end = src, start, end

    def next(self, n: int = CHUNK) -> bytes:
        if self.end is not None:
            n = min(n, self.end - self.pos)
        if n <= 0:
            return b""
        self.src.seek(self.pos)
        data = self.src.read(n)
        self.pos += len(data)
        return data


class _Decoder:
    """One stream's decompressor: ``feed`` input, ``pull`` at most max_length bytes."""

    def __init__(self, d, keeps_input: bool, chunk: int = CHUNK):
        self.d = d
        self.keeps_input = keeps_input  # bz2/lzma/lz4/zstd hold unconsumed input themselves
        self.chunk = chunk
        self.pending = b""
        self.drained = False  # the input has ended and the decoder was called once more

    def feed(self, data: bytes) -> None:
        self.pending += data

    def pull(self, max_length: int) -> bytes:
        data, self.pending = self.pending, b""
        if self.keeps_input:
            return self.d.decompress(data, max_length)
        out = self.d.decompress(data, max_length)
        self.pending = self.d.unconsumed_tail
        return out

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data

    @property
    def wants_input(self) -> bool:
        if self.drained:
            return True
        if self.keeps_input:
            return self.d.needs_input
        return not self.pending


class _Unbounded:
    """``zstandard``'s decompressobj has no max_length: fed 256 bytes at a time, one call
    yields at most ~64 blocks of 128 KiB."""

    def __init__(self, d):
        self.d = d
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self.d.decompress(data) if data else b""

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data


def _factory(codec: str):
    if codec == "gzip":
        return lambda: _Decoder(zlib.decompressobj(31), False)
    if codec == "zlib":
        return lambda: _Decoder(zlib.decompressobj(15), False)
    if codec == "bz2":
        return lambda: _Decoder(bz2.BZ2Decompressor(), True)
    if codec in ("xz", "lzma"):
        return lambda: _Decoder(lzma.LZMADecompressor(lzma.FORMAT_AUTO), True)
    if codec == "lz4":
        try:
            import lz4.frame  # type: ignore[import-untyped]
        except ImportError:
            raise CodecMissing("lz4", "lz4") from None
        return lambda: _Decoder(lz4.frame.LZ4FrameDecompressor(), True)
    if codec == "zstd":
        return _zstd_factory()
    raise ValueError(f"unknown codec {codec}")


def _zstd_factory():
    """Any zstd module DCP or a user may have: the standard library's (3.14), its backport,
    pyzstd, or zstandard (read_across_frames=False: one frame per decoder, as the others)."""
    for name in ("compression.zstd", "backports.zstd", "pyzstd"):
        try:
            cls = __import__(name, fromlist=["ZstdDecompressor"]).ZstdDecompressor
        except (ImportError, AttributeError):
            continue
        return lambda: _Decoder(cls(), True)
    try:
        import zstandard
    except ImportError:
        raise CodecMissing("zstd", "zstandard") from None
    return lambda: _Decoder(_Unbounded(zstandard.ZstdDecompressor().decompressobj()), True, 256)
