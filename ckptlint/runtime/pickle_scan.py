"""Read a pickle without running it.

Two passes over one opcode stream (``pickletools.genops``, which reads the bytes linearly,
so frames cannot hide an instruction):

1. ``opcode_globals``: every global the stream names (GLOBAL, INST, STACK_GLOBAL resolved
   from the strings pushed before it, EXTn).
2. ``InertMachine``: a small pickle virtual machine in which every import is an inert
   ``Global`` record, every call builds an inert ``Call`` record (or, for the handful of
   torch rebuild functions, a ``TensorInfo``), and ``persistent_load`` records storage
   information. Nothing from the file is ever imported or called.

Limits are checked before a value is used (memo index, mark depth, stack size, opcode
count), and any surprise raises ``PickleScanError``: callers fail closed.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import _compat_pickle

MAX_MEMO_INDEX = 1 << 24
MAX_MARK_DEPTH = 2000
MAX_STACK = 1 << 22
MAX_OPS = 1 << 26
MAX_DEPTH = 1000  # object nesting (torch state dicts need < 10)


class PickleScanError(Exception):
    """The pickle could not be read safely (malformed, truncated or over a limit)."""


def map_py2(module: str, name: str) -> Tuple[str, str]:
    """Apply pickle's Python 2 -> 3 renaming (``__builtin__`` -> ``builtins`` ...)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


@dataclass(frozen=True)
class Global:
    """Stand-in for an imported object: only its qualified name."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """Stand-in for ``func(*args)`` (REDUCE, NEWOBJ, INST, OBJ) plus later BUILD state."""

    func: Any
    args: tuple = ()
    state: Any = None
    items: list = field(default_factory=list)


@dataclass(eq=False)
class StorageInfo:
    key: str
    dtype: str
    device: str
    numel: Optional[int]
    type_name: str


@dataclass(eq=False)
class TensorInfo:
    dtype: Optional[str]
    shape: Optional[Tuple[int, ...]]
    device: str
    storage: Optional[StorageInfo]
    kind: str = "tensor"


class PDict(dict):
    """A dict that can carry attributes set by BUILD (``OrderedDict._metadata``)."""

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.attrs: Dict[str, Any] = {}


class PList(list):
    __hash__ = object.__hash__  # type: ignore[assignment]


# torch storage class name -> dtype string
STORAGE_DTYPES = {
    "DoubleStorage": "torch.float64",
    "FloatStorage": "torch.float32",
    "HalfStorage": "torch.float16",
    "BFloat16Storage": "torch.bfloat16",
    "LongStorage": "torch.int64",
    "IntStorage": "torch.int32",
    "ShortStorage": "torch.int16",
    "CharStorage": "torch.int8",
    "ByteStorage": "torch.uint8",
    "BoolStorage": "torch.bool",
    "ComplexDoubleStorage": "torch.complex128",
    "ComplexFloatStorage": "torch.complex64",
    "QInt8Storage": "torch.qint8",
    "QInt32Storage": "torch.qint32",
    "QUInt8Storage": "torch.quint8",
    "QUInt4x2Storage": "torch.quint4x2",
    "QUInt2x4Storage": "torch.quint2x4",
    "UntypedStorage": "torch.uint8",
    "TypedStorage": "torch.uint8",
}

ITEMSIZE = {
    "torch.float64": 8, "torch.float32": 4, "torch.float16": 2, "torch.bfloat16": 2,
    "torch.int64": 8, "torch.int32": 4, "torch.int16": 2, "torch.int8": 1, "torch.uint8": 1,
    "torch.bool": 1, "torch.complex128": 16, "torch.complex64": 8, "torch.qint8": 1,
    "torch.qint32": 4, "torch.quint8": 1, "torch.quint4x2": 1, "torch.quint2x4": 1,
    "torch.uint16": 2, "torch.uint32": 4, "torch.uint64": 8,
    "torch.float8_e4m3fn": 1, "torch.float8_e5m2": 1, "torch.float8_e4m3fnuz": 1,
    "torch.float8_e5m2fnuz": 1, "torch.float8_e8m0fnu": 1,
}

_TENSOR_REBUILDERS = {
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._tensor._rebuild_from_type_v2",
}


def _dtype_of(value) -> Optional[str]:
    if isinstance(value, Global) and value.module == "torch":
        return value.qualname
    return None


def _shape_of(value) -> Optional[Tuple[int, ...]]:
    if isinstance(value, Call) and isinstance(value.func, Global) and value.func.qualname == "torch.Size":
        value = value.args[0] if value.args else ()
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def _rebuild(name: str, args: tuple):
    """Interpret a torch rebuild call from its arguments (never calls torch)."""
    a = list(args)
    if name in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
        return a[0] if a and isinstance(a[0], TensorInfo) else None
    if name == "torch._tensor._rebuild_from_type_v2":
        # (func, new_type, args, state): the tensor is func(*args)
        if len(a) >= 3 and isinstance(a[0], Global) and isinstance(a[2], tuple):
            if a[0].qualname in _TENSOR_REBUILDERS:
                return _rebuild(a[0].qualname, a[2])
        return None
    if name == "torch._utils._rebuild_device_tensor_from_cpu_tensor":
        if a and isinstance(a[0], TensorInfo):
            dev = a[2] if len(a) > 2 and isinstance(a[2], str) else a[0].device
            return TensorInfo(a[0].dtype, a[0].shape, dev, a[0].storage)
        return None
    if name == "torch._utils._rebuild_meta_tensor_no_storage":
        return TensorInfo(_dtype_of(a[0]) if a else None, _shape_of(a[1]) if len(a) > 1 else None, "meta", None)
    if name in ("torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
                "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_qtensor"):
        storage = a[0] if a and isinstance(a[0], StorageInfo) else None
        shape = _shape_of(a[2]) if len(a) > 2 else None
        dtype = storage.dtype if storage else None
        if name == "torch._utils._rebuild_tensor_v3" and len(a) > 6 and _dtype_of(a[6]):
            dtype = _dtype_of(a[6])
        device = storage.device if storage else "cpu"
        return TensorInfo(dtype, shape, device, storage)
    return TensorInfo(None, None, "cpu", None, kind="special")


def _storage_from_pid(pid) -> Optional[StorageInfo]:
    # zip: ('storage', storage_type, key, location, numel)
    # legacy: ('storage', storage_type, key, location, numel, view_metadata)
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        return None
    stype, key, location, numel = pid[1], pid[2], pid[3], pid[4]
    if not isinstance(key, str) or not isinstance(location, str):
        return None
    type_name = stype.name if isinstance(stype, Global) else "?"
    dtype = STORAGE_DTYPES.get(type_name, "unknown")
    n = numel if isinstance(numel, int) and not isinstance(numel, bool) else None
    return StorageInfo(key, dtype, location, n, type_name)


@dataclass
class ScanResult:
    globals: List[str]  # qualified names, first-seen order, after Python 2 mapping
    root: Any  # the inert object tree
    storages: Dict[str, StorageInfo]
    persistent_ids: int
    end: int  # byte offset just after STOP


def _ops(data):
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
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
    start = data.tell() if hasattr(data, "tell") else 0
    ops: list = []
    found: List[str] = []
    machine = InertMachine()
    try:
        for item in _ops(data):
            ops.append(item)
            if max_bytes is not None and item[2] - start > max_bytes:
                raise PickleScanError("pickle larger than the size limit")
        if not ops or ops[-1][0].name != "STOP":
            raise PickleScanError("pickle has no STOP opcode (truncated)")
        end = data.tell() if hasattr(data, "tell") else ops[-1][2] + 1
        found = opcode_globals(ops)
        root = machine.run(ops)
    except PickleScanError as exc:
        # keep what was named before the failure: the report lists it (fail closed)
        partial = found or _safe_globals(ops)
        exc.globals = partial + [g for g in machine.globals if g not in partial]  # type: ignore[attr-defined]
        raise
    for name in machine.globals:
        if name not in found:
            found.append(name)
    return ScanResult(found, root, machine.storages, machine.persistent_ids, end)


def _safe_globals(ops) -> List[str]:
    try:
        return opcode_globals(ops)
    except Exception:  # the opcode list itself is broken: nothing more to learn
        return []


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}


def opcode_globals(ops) -> List[str]:
    """Pass 1: names every global by opcode alone (STACK_GLOBAL from the last two strings,
    following memo GETs). Deliberately independent of the machine in pass 2."""
    found: List[str] = []
    memo: Dict[int, Any] = {}
    recent: List[Any] = []  # last values pushed, enough to resolve STACK_GLOBAL
    memo_next = 0

    def add(module, name):
        module, name = map_py2(str(module), str(name))
        q = f"{module}.{name}"
        if q not in found:
            found.append(q)

    for op, arg, _pos in ops:
        n = op.name
        if n in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            add(module, name)
            recent.append(None)
        elif n == "STACK_GLOBAL":
            if len(recent) >= 2 and isinstance(recent[-1], str) and isinstance(recent[-2], str):
                add(recent[-2], recent[-1])
            else:
                if "<unresolved STACK_GLOBAL>" not in found:
                    found.append("<unresolved STACK_GLOBAL>")
            recent.append(None)
        elif n in ("EXT1", "EXT2", "EXT4"):
            q = f"<extension code {arg}>"
            if q not in found:
                found.append(q)
        elif n in _STRING_OPS:
            recent.append(arg)
        elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[-1] if recent else None
        elif n == "MEMOIZE":
            memo[memo_next] = recent[-1] if recent else None
            memo_next += 1
            continue
        elif n in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(arg)))
        elif n not in ("FRAME", "PROTO", "MARK"):
            recent.append(None)
        if n in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo_next = max(memo_next, int(arg) + 1)
        del recent[:-4]
    return found


class _Mark:
    pass


class InertMachine:
    """Pass 2: a pickle VM that builds inert records instead of objects."""

    def __init__(self):
        self.stack: List[Any] = []
        self.marks: List[List[Any]] = []
        self.memo: Dict[int, Any] = {}
        self.globals: List[str] = []
        self.storages: Dict[str, StorageInfo] = {}
        self.persistent_ids = 0
        self.depths: Dict[int, Tuple[Any, int]] = {}  # id -> (object kept alive, depth)

    # -- helpers -------------------------------------------------------------------------
    def _pop(self):
        if not self.stack:
            raise PickleScanError("stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> List[Any]:
        if not self.marks:
            raise PickleScanError("MARK expected")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _depth(self, obj) -> int:
        entry = self.depths.get(id(obj))
        if entry is not None:
            return entry[1]
        return 1 if isinstance(obj, (list, dict, tuple, Call)) else 0

    def _nest(self, container, children):
        """Record the nesting depth of a container, bounded before it can be used."""
        deepest = 0
        for child in children:
            d = self._depth(child)
            if d > deepest:
                deepest = d
        depth = max(self._depth(container), deepest + 1)
        if depth > MAX_DEPTH:
            raise PickleScanError(f"objects nested deeper than {MAX_DEPTH} levels")
        self.depths[id(container)] = (container, depth)
        return container

    def _push(self, value):
        if len(self.stack) >= MAX_STACK:
            raise PickleScanError("stack too large")
        self.stack.append(value)

    def _memo_index(self, arg) -> int:
        idx = int(arg)
        if idx < 0 or idx > MAX_MEMO_INDEX:
            raise PickleScanError(f"memo index {idx} out of bounds")
        return idx

    def _global(self, module, name) -> Global:
        module, name = map_py2(module, name)
        g = Global(module, name)
        if g.qualname not in self.globals:
            self.globals.append(g.qualname)
        return g

    def _call(self, func, args):
        if not isinstance(args, tuple):
            raise PickleScanError("call arguments are not a tuple")
        if isinstance(func, Global):
            q = func.qualname
            if q in _TENSOR_REBUILDERS:
                t = _rebuild(q, args)
                if t is not None:
                    return t
            if q == "collections.OrderedDict":
                d = PDict()
                if args and isinstance(args[0], list):
                    for pair in args[0]:
                        if isinstance(pair, (tuple, list)) and len(pair) == 2:
                            self._setitem(d, pair[0], pair[1])
                return d
            if q == "torch.Size":
                return _shape_of(args[0]) if args else ()
        return self._nest(Call(func, args), args)

    def _setitem(self, target, key, value):
        self._nest(target, (value,))
        if isinstance(target, dict):
            try:
                target[key] = value
            except TypeError as exc:
                raise PickleScanError("unhashable dict key") from exc
        elif isinstance(target, Call):
            target.items.append((key, value))
        else:
            raise PickleScanError("SETITEM on a non-dict")

    # -- the loop ------------------------------------------------------------------------
    def run(self, ops):
        for op, arg, _pos in ops:
            n = op.name
            handler = getattr(self, "op_" + n, None)
            if n == "STOP":
                if len(self.stack) != 1 or self.marks:
                    raise PickleScanError("unbalanced pickle at STOP")
                return self.stack[0]
            if handler is None:
                raise PickleScanError(f"unsupported opcode {n}")
            handler(arg)
        raise PickleScanError("pickle ended without STOP")

    def _push_arg(self, arg):
        self._push(arg)

    op_INT = op_BININT = op_BININT1 = op_BININT2 = _push_arg
    op_LONG = op_LONG1 = op_LONG4 = _push_arg
    op_STRING = op_BINSTRING = op_SHORT_BINSTRING = _push_arg
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = op_BYTEARRAY8 = _push_arg
    op_UNICODE = op_SHORT_BINUNICODE = op_BINUNICODE = op_BINUNICODE8 = _push_arg
    op_FLOAT = op_BINFLOAT = _push_arg

    def op_NONE(self, arg):
        self._push(None)

    def op_NEWTRUE(self, arg):
        self._push(True)

    def op_NEWFALSE(self, arg):
        self._push(False)

    def op_PROTO(self, arg):
        if not 0 <= int(arg) <= 5:
            raise PickleScanError(f"unsupported pickle protocol {arg}")

    def op_FRAME(self, arg):
        pass

    def op_NEXT_BUFFER(self, arg):
        raise PickleScanError("out-of-band buffers are not supported")

    op_READONLY_BUFFER = op_NEXT_BUFFER

    def op_EMPTY_LIST(self, arg):
        self._push(PList())

    def op_EMPTY_TUPLE(self, arg):
        self._push(())

    def op_EMPTY_DICT(self, arg):
        self._push(PDict())

    def op_EMPTY_SET(self, arg):
        self._push(Call(Global("builtins", "set"), ()))

    def op_MARK(self, arg):
        if len(self.marks) >= MAX_MARK_DEPTH:
            raise PickleScanError("nesting too deep (MARK)")
        self.marks.append(self.stack)
        self.stack = []

    def op_POP_MARK(self, arg):
        self._pop_mark()

    def op_POP(self, arg):
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def op_DUP(self, arg):
        if not self.stack:
            raise PickleScanError("stack underflow")
        self._push(self.stack[-1])

    def _tuple(self, items):
        t = tuple(items)
        self._push(self._nest(t, t) if t else t)

    def op_TUPLE(self, arg):
        self._tuple(self._pop_mark())

    def op_TUPLE1(self, arg):
        self._tuple([self._pop()])

    def op_TUPLE2(self, arg):
        b = self._pop()
        a = self._pop()
        self._tuple([a, b])

    def op_TUPLE3(self, arg):
        c = self._pop()
        b = self._pop()
        a = self._pop()
        self._tuple([a, b, c])

    def op_LIST(self, arg):
        items = self._pop_mark()
        self._push(self._nest(PList(items), items))

    def op_DICT(self, arg):
        items = self._pop_mark()
        d = PDict()
        for i in range(0, len(items) - 1, 2):
            self._setitem(d, items[i], items[i + 1])
        self._push(d)

    def op_FROZENSET(self, arg):
        self._push(Call(Global("builtins", "frozenset"), (tuple(self._pop_mark()),)))

    def op_APPEND(self, arg):
        value = self._pop()
        self._append(self._top(), [value])

    def op_APPENDS(self, arg):
        items = self._pop_mark()
        self._append(self._top(), items)

    def op_ADDITEMS(self, arg):
        items = self._pop_mark()
        target = self._top()
        if not isinstance(target, Call):
            raise PickleScanError("ADDITEMS on a non-set")
        target.items.extend(items)

    def _top(self):
        if not self.stack:
            raise PickleScanError("stack underflow")
        return self.stack[-1]

    def _append(self, target, items):
        self._nest(target, items)
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, Call):
            target.items.extend(items)
        else:
            raise PickleScanError("APPEND on a non-list")

    def op_SETITEM(self, arg):
        value = self._pop()
        key = self._pop()
        self._setitem(self._top(), key, value)

    def op_SETITEMS(self, arg):
        items = self._pop_mark()
        target = self._top()
        if len(items) % 2:
            raise PickleScanError("odd number of SETITEMS values")
        for i in range(0, len(items), 2):
            self._setitem(target, items[i], items[i + 1])

    def op_GET(self, arg):
        idx = self._memo_index(arg)
        if idx not in self.memo:
            raise PickleScanError(f"memo key {idx} not defined")
        self._push(self.memo[idx])

    op_BINGET = op_LONG_BINGET = op_GET

    def op_PUT(self, arg):
        idx = self._memo_index(arg)
        self.memo[idx] = self._top()

    op_BINPUT = op_LONG_BINPUT = op_PUT

    def op_MEMOIZE(self, arg):
        self.op_PUT(len(self.memo))

    def op_GLOBAL(self, arg):
        module, _, name = str(arg).partition(" ")
        self._push(self._global(module, name))

    def op_STACK_GLOBAL(self, arg):
        name = self._pop()
        module = self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleScanError("STACK_GLOBAL needs two strings")
        self._push(self._global(module, name))

    def op_EXT1(self, arg):
        q = f"<extension code {arg}>"
        if q not in self.globals:
            self.globals.append(q)
        self._push(Global("<extension>", str(arg)))

    op_EXT2 = op_EXT4 = op_EXT1

    def op_REDUCE(self, arg):
        args = self._pop()
        func = self._pop()
        self._push(self._call(func, args))

    def op_NEWOBJ(self, arg):
        args = self._pop()
        cls = self._pop()
        self._push(self._call(cls, args))

    def op_NEWOBJ_EX(self, arg):
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        obj = self._call(cls, args)
        if isinstance(obj, Call):
            obj.items.append(("**kwargs", kwargs))
        self._push(obj)

    def op_INST(self, arg):
        module, _, name = str(arg).partition(" ")
        cls = self._global(module, name)
        self._push(self._call(cls, tuple(self._pop_mark())))

    def op_OBJ(self, arg):
        items = self._pop_mark()
        if not items:
            raise PickleScanError("OBJ without a class")
        self._push(self._call(items[0], tuple(items[1:])))

    def op_BUILD(self, arg):
        state = self._pop()
        target = self._top()
        if isinstance(target, PDict):
            # OrderedDict with attributes, e.g. state_dict()._metadata
            if isinstance(state, tuple) and len(state) == 2:
                state = state[1] if state[0] is None else state[0]
            if isinstance(state, dict):
                for k, v in state.items():
                    if isinstance(k, str):
                        target.attrs[k] = v
        elif isinstance(target, Call):
            self._nest(target, (state,))
            target.state = state
        elif isinstance(target, TensorInfo):
            pass  # tensor subclass state: ignored
        else:
            raise PickleScanError("BUILD on an unsupported object")

    def op_PERSID(self, arg):
        self._persistent(str(arg))

    def op_BINPERSID(self, arg):
        self._persistent(self._pop())

    def _persistent(self, pid):
        self.persistent_ids += 1
        info = _storage_from_pid(pid)
        if info is None:
            self._push(Call(Global("<persistent_load>", "unknown"), (pid,) if not isinstance(pid, tuple) else pid))
            return
        known = self.storages.get(info.key)
        if known is None:
            self.storages[info.key] = info
        else:
            info = known
        self._push(info)
