"""Read a pickle without running it.

Two passes over one opcode stream (``opcodes.py``, which reads as the C unpickler does),
fed op by op, keeping nothing but the passes' state:

1. ``InertMachine`` (inert_machine.py): a pickle VM that builds inert records, giving the
   object tree, storages and tensor shapes, every global STACK_GLOBAL really resolves, and
   how each global is used (called, constructed, or only imported).
2. ``OpcodeGlobals``, only when the machine fails: every global the stream names (GLOBAL,
   INST, STACK_GLOBAL resolved from the strings and memo entries pushed before it, EXTn), by
   opcode alone, to the end of what parses.

The machine stops at the first error (and fails closed: ``PickleScanError``), while the
opcode pass still names what comes after, so the report lists it.

A pickle whose frames end inside an instruction is read twice: in order (``pickle.loads``)
and as the C unpickler reads a file object without ``peek`` (``torch.load``'s ``data.pkl``);
the result names what either reading would run.
"""

from __future__ import annotations

import io
import mmap
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ckptlint.reader.inert_machine import HANDLERS, MAX_STACK, InertMachine, merge_uses
from ckptlint.reader.opcodes import Reader, ops
from ckptlint.reader.records import Call, PickleScanError, StorageInfo, map_py2

MAX_OPS = 1 << 26
UNRESOLVED = "<unresolved STACK_GLOBAL>"


@dataclass
class ScanResult:
    globals: List[str]  # qualified names, first-seen order, after Python 2 mapping
    root: Any  # the inert object tree
    storages: Dict[str, StorageInfo]
    persistent_ids: int
    end: int  # byte offset in the stream just after STOP
    uses: Dict[str, str] = field(default_factory=dict)  # global -> calls | constructs | imports
    straddled: bool = False  # a frame ended inside an instruction: readers disagree
    implied: frozenset = frozenset()  # classes built without being named (numpy dtype classes)
    ops: frozenset = frozenset()  # every opcode name read
    nested: list = field(default_factory=list)  # (loader global, bytes or None) of nested loads
    faults: list = field(default_factory=list)  # what torch refuses while unpickling it


def scan(data, max_bytes: Optional[int] = None, start: int = 0) -> ScanResult:
    """Parse one pickle: ``bytes`` (from index ``start``), or a binary file positioned at
    its start (read through an ``mmap`` when it has a file descriptor; left positioned just
    after STOP). Raises PickleScanError (with ``globals`` and ``uses`` of what came before)."""
    stream = None
    if isinstance(data, (bytes, bytearray, memoryview)):
        buf = bytes(data)
    else:
        stream, start = data, data.tell()
        buf = _buffer(stream)
    try:
        result = _scan_buffer(buf, start, max_bytes)
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    if stream is not None:
        stream.seek(result.end)
    return result


def _buffer(stream):
    """The whole file, mapped, or (for in-memory streams) its bytes; a remote file
    (source.py) gives a view that fetches the bytes the scan reads, never the whole file."""
    view = getattr(stream, "byte_view", None)
    if view is not None:
        return view()
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fileno = None
    if fileno is not None:
        try:
            return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # an empty file, a pipe
            pass
    position = stream.tell()
    stream.seek(0)
    data = stream.read()
    stream.seek(position)
    return data


def _scan_buffer(buf, start: int, max_bytes: Optional[int]) -> ScanResult:
    size = len(buf) - start
    capped = max_bytes is not None and size > max_bytes
    if capped:
        size = max_bytes
    try:
        first = _scan(Reader(buf, start, size, False))
    except PickleScanError as exc:
        if capped and "truncated" in str(exc):
            exc.args = ("pickle larger than the size limit",)
        if not getattr(exc, "straddled", False):
            raise
        first = None
        first_error = exc
    if first is not None and not first.straddled:
        return first
    # Frames end inside instructions: also read as torch.load reads data.pkl, and report both.
    try:
        second = _scan(Reader(buf, start, size, True))
    except PickleScanError as exc:
        exc.straddled = True  # type: ignore[attr-defined]
        _merge_into_error(exc, first or first_error)
        raise
    if first is None:
        _merge_into_error(first_error, second)
        raise first_error
    second.globals = first.globals + [g for g in second.globals if g not in first.globals]
    second.uses = merge_uses(first.uses, second.uses)
    second.straddled = True
    second.end = first.end
    second.ops = first.ops | second.ops
    second.nested = first.nested + [n for n in second.nested if n not in first.nested]
    return second


def _merge_into_error(exc, other) -> None:
    names = list(getattr(exc, "globals", []))
    names += [g for g in getattr(other, "globals", []) if g not in names]
    exc.globals = names
    exc.uses = merge_uses(getattr(exc, "uses", {}), getattr(other, "uses", {}))
    exc.ops = frozenset(getattr(exc, "ops", ())) | frozenset(getattr(other, "ops", ()))
    exc.nested = list(getattr(exc, "nested", [])) + list(getattr(other, "nested", []))


def _scan(reader: Reader) -> ScanResult:
    """Run the machine; only when it fails, run the opcode pass over the whole stream too,
    so the report still names what comes after the failure (fail closed)."""
    machine = InertMachine()
    handlers = HANDLERS
    seen = set()
    try:
        for count, (name, arg, _pos) in enumerate(ops(reader)):
            seen.add(name)
            handlers[name](machine, arg)
            if machine.pending_array is not None:
                _joblib_array(reader, machine)
            if not count & 0xFFF:  # the handlers push without checking: bound them here
                if count > MAX_OPS:
                    raise PickleScanError("too many opcodes")
                if len(machine.stack) > MAX_STACK:
                    raise PickleScanError("stack too large")
    except PickleScanError as exc:
        names = _opcode_pass(reader)
        exc.globals = names + [g for g in machine.globals if g not in names]  # type: ignore[attr-defined]
        exc.uses = dict(machine.uses)  # type: ignore[attr-defined]
        exc.straddled = reader.straddled  # type: ignore[attr-defined]
        exc.ops = frozenset(seen)  # type: ignore[attr-defined]
        exc.nested = list(machine.nested)  # type: ignore[attr-defined]
        raise
    except RecursionError as exc:  # pragma: no cover - both passes are iterative
        raise PickleScanError("nesting too deep") from exc
    return ScanResult(list(machine.globals), machine.result, machine.storages, machine.persistent_ids,
                      reader.idx, machine.uses, reader.straddled, frozenset(machine.implied), frozenset(seen),
                      list(machine.nested), list(machine.faults))


def _opcode_pass(reader: Reader) -> List[str]:
    """Pass 1 over the same bytes, as far as they parse."""
    names = OpcodeGlobals()
    again = Reader(reader.data, reader.start, reader.limit - reader.start, reader.drop)
    try:
        for name, arg, _pos in ops(again):
            names.feed(name, arg)
    except PickleScanError:
        pass
    return names.found


def _joblib_array(reader: Reader, machine: InertMachine) -> None:
    """joblib writes an array's bytes into the pickle stream right after its
    ``NumpyArrayWrapper`` is built: skip them as ``joblib.load`` reads them, or, for an array
    of objects, scan the whole pickle joblib nests there."""
    state, machine.pending_array = machine.pending_array, None
    dtype = state.get("dtype") if isinstance(state, dict) else None
    shape = state.get("shape") if isinstance(state, dict) else None
    code = dtype.args[0] if isinstance(dtype, Call) and dtype.args and isinstance(dtype.args[0], str) else None
    if code is None or not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise PickleScanError("cannot follow joblib's array data (unreadable array wrapper)")
    if code.lstrip("<>|=").startswith("O"):
        nested = _scan(Reader(reader.data, reader.idx, reader.limit - reader.idx, False))
        reader.idx = nested.end
        machine.globals.extend(g for g in nested.globals if g not in machine.globals)
        machine.uses = merge_uses(machine.uses, nested.uses)
        machine.nested.extend(nested.nested)
        return
    itemsize = _itemsize(code)
    if itemsize is None:
        raise PickleScanError(f"cannot follow joblib's array data (dtype `{code}`)")
    if state.get("numpy_array_alignment_bytes") is not None:
        reader.skip(reader.read(1)[0])
    count = 1
    for n in shape:
        count *= n
    reader.skip(count * itemsize)


def _itemsize(code: str) -> Optional[int]:
    """Bytes per item of a numpy type code (`f4`, `<i8`, `?`, `U10`, `M8[ns]`)."""
    match = re.fullmatch(r"[<>|=]?([a-zA-Z?])(\d*)(\[\w+\])?", code)
    if not match:
        return None
    kind, digits = match.group(1), match.group(2)
    if kind in "?b" and not digits:
        return 1
    if not digits:
        return None
    return int(digits) * (4 if kind == "U" else 1)


# what each opcode means to pass 1 (anything not listed pushes a value pass 1 does not track)
_UNKNOWN, _STRING, _NOTHING, _GLOBAL, _STACK_GLOBAL, _EXT, _PUT, _MEMOIZE, _GET, _PROTO = range(10)
_KIND = {name: _STRING for name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                                    "STRING", "BINSTRING", "SHORT_BINSTRING")}
_KIND.update({"FRAME": _NOTHING, "PROTO": _PROTO, "MARK": _NOTHING, "GLOBAL": _GLOBAL,
              "INST": _GLOBAL, "STACK_GLOBAL": _STACK_GLOBAL, "EXT1": _EXT, "EXT2": _EXT,
              "EXT4": _EXT, "PUT": _PUT, "BINPUT": _PUT, "LONG_BINPUT": _PUT,
              "MEMOIZE": _MEMOIZE, "GET": _GET, "BINGET": _GET, "LONG_BINGET": _GET})


class OpcodeGlobals:
    """Pass 1: names every global by opcode alone. Deliberately independent of pass 2.

    It tracks only the last two values pushed (``below``, ``top``), which is all a
    STACK_GLOBAL needs; an opcode that pops or pushes something untracked makes ``top``
    unknown, so a STACK_GLOBAL after it is reported as unresolved (dangerous), never guessed.
    """

    def __init__(self):
        self.found: List[str] = []
        self.memo: Dict[int, Any] = {}
        self.below: Any = None
        self.top: Any = None
        self.proto = 0

    def _add(self, module: str, name: str) -> None:
        if self.proto < 3:  # the unpickler maps Python 2 names only below protocol 3
            module, name = map_py2(module, name)
        qualname = f"{module}.{name}"
        if qualname not in self.found:
            self.found.append(qualname)

    def feed(self, n: str, arg) -> None:
        kind = _KIND.get(n, _UNKNOWN)
        if kind == _UNKNOWN:
            self.below, self.top = self.top, None
        elif kind == _STRING:
            self.below, self.top = self.top, arg
        elif kind == _PUT:
            self.memo[int(arg)] = self.top
        elif kind == _GET:
            self.below, self.top = self.top, self.memo.get(int(arg))
        elif kind == _MEMOIZE:
            self.memo[len(self.memo)] = self.top
        elif kind == _PROTO:
            self.proto = int(arg)
        elif kind == _GLOBAL:
            module, _, name = str(arg).partition(" ")
            self._add(module, name)
            self.below, self.top = self.top, None
        elif kind == _STACK_GLOBAL:
            if isinstance(self.top, str) and isinstance(self.below, str):
                self._add(self.below, self.top)
            elif UNRESOLVED not in self.found:
                self.found.append(UNRESOLVED)
            self.below, self.top = self.top, None
        elif kind == _EXT:
            if f"<extension code {arg}>" not in self.found:
                self.found.append(f"<extension code {arg}>")
            self.below, self.top = self.top, None


def opcode_globals(data) -> List[str]:
    """Pass 1 alone over a whole pickle, read in order (for tests and tools)."""
    names = OpcodeGlobals()
    for name, arg, _pos in ops(Reader(data, 0, len(data), False)):
        names.feed(name, arg)
    return names.found
