"""Read a pickle without running it.

Two passes over one opcode stream, fed op by op (``pickletools.genops`` reads the bytes
linearly, so frames cannot hide an instruction, and nothing is kept but the passes' state):

1. ``OpcodeGlobals``: every global the stream names (GLOBAL, INST, STACK_GLOBAL resolved
   from the strings and memo entries pushed before it, EXTn), by opcode alone.
2. ``InertMachine`` (inert_machine.py): a pickle VM that builds inert records, giving the
   object tree, storages and tensor shapes, and every global STACK_GLOBAL really resolves.

Both are needed: the opcode list alone cannot see what a STACK_GLOBAL really resolves to,
and the machine stops at the first error while the opcode pass still names what came
before. Any surprise raises ``PickleScanError``: callers fail closed.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ckptlint.runtime.inert_machine import InertMachine
from ckptlint.runtime.records import PickleScanError, StorageInfo, map_py2

MAX_OPS = 1 << 26
UNRESOLVED = "<unresolved STACK_GLOBAL>"


@dataclass
class ScanResult:
    globals: List[str]  # qualified names, first-seen order, after Python 2 mapping
    root: Any  # the inert object tree
    storages: Dict[str, StorageInfo]
    persistent_ids: int
    end: int  # byte offset just after STOP


def _ops(stream):
    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(stream)):
            if count > MAX_OPS:
                raise PickleScanError("too many opcodes")
            yield op, arg, pos
    except PickleScanError:
        raise
    except RecursionError as exc:  # pragma: no cover - genops is iterative
        raise PickleScanError("nesting too deep") from exc
    except Exception as exc:  # ValueError, EOFError, UnicodeDecodeError, ...
        raise PickleScanError(f"malformed pickle: {exc}") from exc


def scan(data, max_bytes: Optional[int] = None) -> ScanResult:
    """Parse one pickle (bytes or a binary file positioned at its start)."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    start = stream.tell()
    names = OpcodeGlobals()
    machine = InertMachine()
    last = None
    limit = None if max_bytes is None else start + max_bytes
    feed, step = names.feed, machine.step
    try:
        for op, arg, pos in _ops(stream):
            if limit is not None and pos > limit:
                raise PickleScanError("pickle larger than the size limit")
            last = op.name
            feed(last, arg)
            step(last, arg)
        if last != "STOP":
            raise PickleScanError("pickle has no STOP opcode (truncated)")
    except PickleScanError as exc:
        # keep what was named before the failure: the report lists it (fail closed)
        exc.globals = names.found + [g for g in machine.globals if g not in names.found]  # type: ignore[attr-defined]
        raise
    # The VM ran every STACK_GLOBAL on the real stack contents (any opcode it cannot model
    # exactly is an error, handled above), so pass 1's "could not follow" marker is moot.
    found = [g for g in names.found if g != UNRESOLVED]
    found += [g for g in machine.globals if g not in found]
    return ScanResult(found, machine.result, machine.storages, machine.persistent_ids, stream.tell())


# what each opcode means to pass 1 (anything not listed pushes a value pass 1 does not track)
_UNKNOWN, _STRING, _NOTHING, _GLOBAL, _STACK_GLOBAL, _EXT, _PUT, _MEMOIZE, _GET = range(9)
_KIND = {name: _STRING for name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                                    "STRING", "BINSTRING", "SHORT_BINSTRING")}
_KIND.update({"FRAME": _NOTHING, "PROTO": _NOTHING, "MARK": _NOTHING, "GLOBAL": _GLOBAL,
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
        self.memo_next = 0

    def _add(self, qualname: str) -> None:
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
            if int(arg) >= self.memo_next:
                self.memo_next = int(arg) + 1
        elif kind == _GET:
            self.below, self.top = self.top, self.memo.get(int(arg))
        elif kind == _MEMOIZE:
            self.memo[self.memo_next] = self.top
            self.memo_next += 1
        elif kind == _GLOBAL:
            module, _, name = str(arg).partition(" ")
            module, name = map_py2(module, name)
            self._add(f"{module}.{name}")
            self.below, self.top = self.top, None
        elif kind == _STACK_GLOBAL:
            if isinstance(self.top, str) and isinstance(self.below, str):
                module, name = map_py2(self.below, self.top)
                self._add(f"{module}.{name}")
            else:
                self._add(UNRESOLVED)
            self.below, self.top = self.top, None
        elif kind == _EXT:
            self._add(f"<extension code {arg}>")
            self.below, self.top = self.top, None


def opcode_globals(data) -> List[str]:
    """Pass 1 alone over a whole pickle (for tests and tools)."""
    names = OpcodeGlobals()
    for op, arg, _pos in _ops(io.BytesIO(data)):
        names.feed(op.name, arg)
    return names.found
