"""Pickle opcodes read the way CPython's C unpickler reads them.

``pickletools.genops`` reads a pickle strictly in order, but the C unpickler (what
``pickle.load`` and ``torch.load`` use) buffers its input: inside a protocol-4 frame, an
instruction that runs past the frame's end is *not* read from the bytes after it when the
input is a file object without ``peek`` (``io.BytesIO``, which is how ``torch.load`` reads
``data.pkl``): the rest of the frame is dropped and the instruction is read from after the
frame. ``pickle.loads`` on bytes reads in order. A pickler never writes such a frame; a
crafted file uses it to show one program to a scanner and run another.

``ops(stream, drop_tail)`` yields ``(name, arg, pos)`` with arguments decoded as
``_pickle.c`` decodes them (names as UTF-8, ``INT`` with base 0, ...). In order
(``drop_tail=False``) it also records whether any instruction straddled a frame end
(``Reader.straddled``), so callers re-read with ``drop_tail=True`` only for such files.
"""

from __future__ import annotations

import codecs
import struct
from typing import Iterator, Optional, Tuple

from ckptlint.reader.records import PickleScanError

MAX_LINE = 1 << 26  # a text opcode's line; longer lines are refused (fail closed)

# opcode byte -> (name, argument kind)
OPCODES = {
    b"(": ("MARK", None), b".": ("STOP", None), b"0": ("POP", None), b"1": ("POP_MARK", None),
    b"2": ("DUP", None), b"F": ("FLOAT", "floatnl"), b"I": ("INT", "intnl"),
    b"J": ("BININT", "int4"), b"K": ("BININT1", "uint1"), b"L": ("LONG", "longnl"),
    b"M": ("BININT2", "uint2"), b"N": ("NONE", None), b"P": ("PERSID", "asciinl"),
    b"Q": ("BINPERSID", None), b"R": ("REDUCE", None), b"S": ("STRING", "stringnl"),
    b"T": ("BINSTRING", "string4"), b"U": ("SHORT_BINSTRING", "string1"),
    b"V": ("UNICODE", "unicodenl"), b"X": ("BINUNICODE", "unicode4"), b"a": ("APPEND", None),
    b"b": ("BUILD", None), b"c": ("GLOBAL", "globalnl"), b"d": ("DICT", None),
    b"}": ("EMPTY_DICT", None), b"e": ("APPENDS", None), b"g": ("GET", "decimalnl"),
    b"h": ("BINGET", "uint1"), b"i": ("INST", "globalnl"), b"j": ("LONG_BINGET", "uint4"),
    b"l": ("LIST", None), b"]": ("EMPTY_LIST", None), b"o": ("OBJ", None),
    b"p": ("PUT", "decimalnl"), b"q": ("BINPUT", "uint1"), b"r": ("LONG_BINPUT", "uint4"),
    b"s": ("SETITEM", None), b"t": ("TUPLE", None), b")": ("EMPTY_TUPLE", None),
    b"u": ("SETITEMS", None), b"G": ("BINFLOAT", "float8"), b"\x80": ("PROTO", "uint1"),
    b"\x81": ("NEWOBJ", None), b"\x82": ("EXT1", "uint1"), b"\x83": ("EXT2", "uint2"),
    b"\x84": ("EXT4", "int4"), b"\x85": ("TUPLE1", None), b"\x86": ("TUPLE2", None),
    b"\x87": ("TUPLE3", None), b"\x88": ("NEWTRUE", None), b"\x89": ("NEWFALSE", None),
    b"\x8a": ("LONG1", "long1"), b"\x8b": ("LONG4", "long4"), b"B": ("BINBYTES", "bytes4"),
    b"C": ("SHORT_BINBYTES", "bytes1"), b"\x8c": ("SHORT_BINUNICODE", "unicode1"),
    b"\x8d": ("BINUNICODE8", "unicode8"), b"\x8e": ("BINBYTES8", "bytes8"),
    b"\x8f": ("EMPTY_SET", None), b"\x90": ("ADDITEMS", None), b"\x91": ("FROZENSET", None),
    b"\x92": ("NEWOBJ_EX", None), b"\x93": ("STACK_GLOBAL", None), b"\x94": ("MEMOIZE", None),
    b"\x95": ("FRAME", "uint8"), b"\x96": ("BYTEARRAY8", "bytes8"),
    b"\x97": ("NEXT_BUFFER", None), b"\x98": ("READONLY_BUFFER", None),
}


class Reader:
    """The C unpickler's input buffer, over the pickle's bytes (``bytes`` or an ``mmap``)
    from index ``start`` to ``start + size``.

    In order (``drop_tail=False``) the whole input is one buffer and every read continues at
    the next byte, as ``pickle.loads`` reads. With ``drop_tail=True`` the buffer is what the
    last read from the "file" fetched (a whole frame after FRAME): a read that does not fit in
    it drops the buffer's remaining bytes and reads from the file, as ``_Unpickler_Read`` does
    for a file without ``peek``; payloads of the bytes opcodes (``_Unpickler_ReadInto``) still
    take the buffer's remaining bytes first.
    """

    def __init__(self, data, start: int, size: int, drop_tail: bool):
        self.data = data
        self.start = start
        self.limit = start + size
        self.drop = drop_tail
        self.idx = start  # next byte to read
        self.buf_end = start if drop_tail else self.limit  # end of the current buffer
        self.fpos = start  # drop_tail: where the next read from the file starts
        self.frame_end: Optional[int] = None  # in order: where the current frame ends
        self.straddled = False

    def pos(self) -> int:
        return self.idx - self.start

    def _left(self) -> int:
        return self.limit - (self.fpos if self.drop else self.idx)

    def _fetch(self, n: int) -> bytes:
        """Read ``n`` bytes from the file: they become the buffer."""
        begin = self.fpos
        if begin + n > self.limit:
            raise PickleScanError("pickle data was truncated")
        self.fpos = self.buf_end = self.idx = begin + n
        return self.data[begin:begin + n]

    def read(self, n: int) -> bytes:
        i = self.idx
        j = i + n
        if j <= self.buf_end:
            self.idx = j
            return self.data[i:j]
        if not self.drop:
            raise PickleScanError("pickle data was truncated")
        return self._fetch(n)  # the buffer's remaining bytes are dropped

    def read_into(self, n: int) -> bytes:
        head = self.data[self.idx:min(self.idx + n, self.buf_end)]
        self.idx += len(head)
        if len(head) == n:
            return head
        if not self.drop:
            raise PickleScanError("pickle data was truncated")
        return head + self._fetch(n - len(head))

    def skip(self, n: int) -> None:
        """Consume ``n`` bytes without keeping them (raw data a loader reads itself)."""
        head = min(n, self.buf_end - self.idx)
        self.idx += head
        if head < n:
            if not self.drop:
                raise PickleScanError("pickle data was truncated")
            if self.fpos + n - head > self.limit:
                raise PickleScanError("pickle data was truncated")
            self.fpos = self.buf_end = self.idx = self.fpos + n - head

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.idx, self.buf_end)
        if end >= 0:
            out = self.data[self.idx:end + 1]
            self.idx = end + 1
            return out
        if not self.drop:
            raise PickleScanError("pickle data was truncated")
        end = self.data.find(b"\n", self.fpos, min(self.limit, self.fpos + MAX_LINE))
        if end < 0:
            raise PickleScanError("pickle data was truncated" if self.limit - self.fpos < MAX_LINE
                                  else "line too long")
        return self._fetch(end + 1 - self.fpos)

    def frame(self, length: int, at: int) -> None:
        if self.drop:
            self.read(length)
            self.idx -= length  # rewind to the frame's start, as load_frame does
            return
        if self.idx + length > self.limit:
            raise PickleScanError("FRAME runs past the end of the data")
        if self.frame_end is not None and at < self.frame_end < self.idx + length:
            self.straddled = True  # a frame inside a frame that outlasts it
        self.frame_end = self.idx + length


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise PickleScanError(f"malformed pickle: {exc}") from exc


def _line(r: Reader) -> bytes:
    line = r.readline()
    if len(line) < 2 and line != b"\n":
        raise PickleScanError("pickle data was truncated")
    return line[:-1]


def _int_text(s: bytes) -> int:
    text = s.decode("ascii", "strict").strip()
    if text in ("01", "00"):
        return text == "01"  # protocol 0's True/False
    if text.endswith("L"):
        text = text[:-1]
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 8) if text.lstrip("+-").startswith("0") else int(text, 10)
        except ValueError as exc:
            raise PickleScanError("could not convert string to int") from exc


def _string(s: bytes) -> str:
    if len(s) < 2 or s[:1] != s[-1:] or s[:1] not in (b"'", b'"'):
        raise PickleScanError("the STRING opcode argument must be quoted")
    raw = codecs.escape_decode(s[1:-1])[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _counted(r: Reader, width: int, signed: bool = False) -> int:
    n = int.from_bytes(r.read(width), "little", signed=signed)
    if n < 0:
        raise PickleScanError("negative byte count")
    if n > r.limit - r.idx and n > r._left():
        raise PickleScanError("pickle data was truncated")
    return n


def _argument(kind: str, r: Reader):
    if kind == "uint1":
        return r.read(1)[0]
    if kind == "uint2":
        return _uint(r.read(2))
    if kind in ("uint4", "uint8"):
        return _uint(r.read(4 if kind == "uint4" else 8))
    if kind == "int4":
        return int.from_bytes(r.read(4), "little", signed=True)
    if kind in ("long1", "long4"):
        n = _counted(r, 1) if kind == "long1" else _counted(r, 4, signed=True)
        return int.from_bytes(r.read(n), "little", signed=True) if n else 0
    if kind in ("string1", "string4"):
        raw = r.read(_counted(r, 1) if kind == "string1" else _counted(r, 4, signed=True))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if kind in ("unicode1", "unicode4", "unicode8"):
        return _text(r.read(_counted(r, {"unicode1": 1, "unicode4": 4, "unicode8": 8}[kind])))
    if kind in ("bytes1", "bytes4", "bytes8"):
        return r.read_into(_counted(r, {"bytes1": 1, "bytes4": 4, "bytes8": 8}[kind]))
    if kind == "float8":
        return struct.unpack(">d", r.read(8))[0]
    if kind == "globalnl":
        module = _text(_line(r))
        name = _text(_line(r))
        return f"{module} {name}"
    if kind in ("intnl", "longnl", "decimalnl"):
        value = _int_text(_line(r))
        if kind == "decimalnl" and value < 0:
            raise PickleScanError("negative memo index")
        return value
    if kind == "floatnl":
        try:
            return float(_line(r).decode("ascii"))
        except ValueError as exc:
            raise PickleScanError("could not convert string to float") from exc
    if kind == "stringnl":
        return _string(_line(r))
    if kind == "unicodenl":
        return _line(r).decode("raw-unicode-escape")
    if kind == "asciinl":
        try:
            return _line(r).decode("ascii")
        except UnicodeDecodeError as exc:
            raise PickleScanError("persistent IDs in protocol 0 must be ASCII strings") from exc
    raise AssertionError(kind)  # pragma: no cover


def ops(r: Reader) -> Iterator[Tuple[str, object, int]]:
    """Yield ``(opcode name, argument, position)`` up to and including STOP."""
    table = OPCODES
    data = r.data
    while True:
        begin = r.idx
        if begin < r.buf_end:
            code = data[begin:begin + 1]
            r.idx = begin + 1
        else:
            code = r.read(1)
        entry = table.get(code)
        if entry is None:
            raise PickleScanError(f"invalid load key {code!r} at byte {begin - r.start}")
        name, kind = entry
        if kind is None:
            arg = None
        else:
            try:
                arg = _argument(kind, r)
            except (UnicodeDecodeError, ValueError, struct.error) as exc:
                raise PickleScanError(f"malformed pickle: {exc}") from exc
        if name == "FRAME":
            r.frame(arg, begin)
        elif r.frame_end is not None and begin < r.frame_end < r.idx and not r.drop:
            r.straddled = True  # an instruction that began inside a frame ended after it
        yield name, arg, begin - r.start
        if name == "STOP":
            return
