"""Pass 2 of the pickle scan: a pickle virtual machine that builds inert records.

Every import becomes a ``Global`` (its name only), every call a ``Call`` record (or, for
torch's rebuild functions, a ``TensorInfo`` read from the arguments), and
``persistent_load`` records the storage. Limits are checked before a value is used.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ckptlint.reader.records import (
    Call,
    Global,
    PDict,
    PickleScanError,
    PList,
    StorageInfo,
    TensorInfo,
    class_of,
    map_py2,
)
from ckptlint.reader.allowlist import dtype_class
from ckptlint.reader.torch_tables import (
    TENSOR_REBUILDERS,
    interpret_rebuild,
    out_of_bounds,
    shape_of,
    storage_from_pid,
)

MAX_MEMO_INDEX = 1 << 24  # the memo is a dict, but an index this large is never honest
MAX_MARK_DEPTH = 2000
MAX_STACK = 1 << 22
MAX_DEPTH = 1000  # object nesting (torch state dicts need < 10)

# how a global is used, strongest first: what the message says the pickle does with it
CALLS, CONSTRUCTS, IMPORTS = "calls", "constructs", "imports"
_RANK = {CALLS: 0, CONSTRUCTS: 1, IMPORTS: 2}
# callables that load a whole nested checkpoint or pickle from the bytes they are given:
# what they do is what those bytes hold (read by the reader as a file of their own)
NESTED_LOADERS = {
    "torch.storage._load_from_bytes": "torch.load(weights_only=False)",
    "pickle.loads": "pickle.loads", "_pickle.loads": "pickle.loads",
}
SCRIPT_OBJECT = ("torch.ScriptObject", "torch._C.ScriptObject")
# callables that call or instantiate some of their arguments: (argument index, use)
_ARG_USES = {
    "copyreg._reconstructor": ((0, CONSTRUCTS), (1, CONSTRUCTS)),  # cls, base (its __init__)
    "copyreg.__newobj__": ((0, CONSTRUCTS),),
    "copyreg.__newobj_ex__": ((0, CONSTRUCTS),),
    "torch._tensor._rebuild_from_type_v2": ((0, CALLS), (1, CONSTRUCTS)),
    "numpy.random._pickle.__randomstate_ctor": ((0, CONSTRUCTS), (1, CALLS)),
    "numpy.random._pickle.__generator_ctor": ((0, CONSTRUCTS), (1, CALLS)),
    "numpy.random._pickle.__bit_generator_ctor": ((0, CONSTRUCTS),),
}


def literal_bytes(value):
    """``value`` as the bytes object the unpickler builds, when the pickle spells it out:
    BINBYTES and kin, or protocol 2's ``_codecs.encode(text, "latin1")``; else None."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if (isinstance(value, Call) and isinstance(value.func, Global) and value.func.qualname == "_codecs.encode"
            and len(value.args) == 2 and isinstance(value.args[0], str) and value.args[1] in ("latin1", "latin-1")):
        try:
            return value.args[0].encode("latin1")
        except UnicodeEncodeError:
            return None
    return None


def merge_uses(a: Dict[str, str], b: Dict[str, str]) -> Dict[str, str]:
    out = dict(a)
    for name, use in b.items():
        if name not in out or _RANK[use] < _RANK[out[name]]:
            out[name] = use
    return out


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
        self.result: Any = None
        self.proto = 0
        self.uses: Dict[str, str] = {}  # global -> CALLS | CONSTRUCTS | IMPORTS
        self.pending_array: Any = None  # a joblib array wrapper whose raw bytes come next
        self.implied: set = set()  # classes built without being named (numpy dtype classes)
        self.nested: List[Tuple[str, Any]] = []  # (loader global, its bytes or None: not a literal)
        self.faults: List[str] = []  # what torch would refuse while unpickling (a view past its storage)

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
        if type(obj) not in _CONTAINERS:
            return 0
        entry = self.depths.get(id(obj))
        return 1 if entry is None else entry[1]

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
        if depth > 1:  # depth 1 is what _depth assumes for a container it has not seen
            self.depths[id(container)] = (container, depth)
        return container

    def _memo_index(self, arg) -> int:
        idx = int(arg)
        if idx < 0 or idx > MAX_MEMO_INDEX:
            raise PickleScanError(f"memo index {idx} out of bounds")
        return idx

    def _global(self, module, name) -> Global:
        if self.proto < 3:  # the unpickler maps Python 2 names only below protocol 3
            module, name = map_py2(module, name)
        g = Global(module, name)
        if g.qualname not in self.globals:
            self.globals.append(g.qualname)
            self.uses[g.qualname] = IMPORTS
        return g

    def _use(self, obj, use: str) -> None:
        if not isinstance(obj, Global):
            return
        key = f"<extension code {obj.name}>" if obj.module == "<extension>" else obj.qualname
        if key in self.uses and _RANK[use] < _RANK[self.uses[key]]:
            self.uses[key] = use

    def _call(self, func, args, use: str = CALLS):
        if not isinstance(args, tuple):
            raise PickleScanError("call arguments are not a tuple")
        self._use(func, use)
        if isinstance(func, Global):
            q = func.qualname
            for index, arg_use in _ARG_USES.get(q, ()):
                if index < len(args):
                    self._use(args[index], arg_use)
            if q in NESTED_LOADERS:
                self.nested.append((q, literal_bytes(args[0]) if args else None))
            if q in TENSOR_REBUILDERS:
                t = interpret_rebuild(q, args)
                if t is not None:
                    fault = out_of_bounds(t)
                    if fault is not None and len(self.faults) < 10:
                        self.faults.append(fault)
                    return t
            if q == "collections.OrderedDict":
                d = PDict()
                if args and isinstance(args[0], list):
                    for pair in args[0]:
                        if isinstance(pair, (tuple, list)) and len(pair) == 2:
                            self._setitem(d, pair[0], pair[1])
                return d
            if q == "torch.Size":
                return shape_of(args[0]) if args else ()
            if q == "numpy.dtype" and args and isinstance(args[0], str):
                implied = dtype_class(args[0])
                if implied is not None:
                    self.implied.add(implied)
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

    # -- the opcodes ---------------------------------------------------------------------
    def op_STOP(self, arg):
        if len(self.stack) != 1 or self.marks:
            raise PickleScanError("unbalanced pickle at STOP")
        self.result = self.stack[0]

    def _push_arg(self, arg):
        self.stack.append(arg)  # the stack's size is bounded by the scan loop

    op_INT = op_BININT = op_BININT1 = op_BININT2 = _push_arg
    op_LONG = op_LONG1 = op_LONG4 = _push_arg
    op_STRING = op_BINSTRING = op_SHORT_BINSTRING = _push_arg
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = op_BYTEARRAY8 = _push_arg
    op_UNICODE = op_SHORT_BINUNICODE = op_BINUNICODE = op_BINUNICODE8 = _push_arg
    op_FLOAT = op_BINFLOAT = _push_arg

    def op_NONE(self, arg):
        self.stack.append(None)

    def op_NEWTRUE(self, arg):
        self.stack.append(True)

    def op_NEWFALSE(self, arg):
        self.stack.append(False)

    def op_PROTO(self, arg):
        if not 0 <= int(arg) <= 5:
            raise PickleScanError(f"unsupported pickle protocol {arg}")
        self.proto = int(arg)

    def op_FRAME(self, arg):
        pass

    def op_NEXT_BUFFER(self, arg):
        raise PickleScanError("out-of-band buffers are not supported")

    op_READONLY_BUFFER = op_NEXT_BUFFER

    def op_EMPTY_LIST(self, arg):
        self.stack.append(PList())

    def op_EMPTY_TUPLE(self, arg):
        self.stack.append(())

    def op_EMPTY_DICT(self, arg):
        self.stack.append(PDict())

    def op_EMPTY_SET(self, arg):
        self.stack.append(Call(Global("builtins", "set"), ()))

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
        self.stack.append(self.stack[-1])

    def _tuple(self, items):
        t = tuple(items)
        self.stack.append(self._nest(t, t) if t else t)

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
        self.stack.append(self._nest(PList(items), items))

    def op_DICT(self, arg):
        items = self._pop_mark()
        d = PDict()
        for i in range(0, len(items) - 1, 2):
            self._setitem(d, items[i], items[i + 1])
        self.stack.append(d)

    def op_FROZENSET(self, arg):
        items = tuple(self._pop_mark())  # before `self.stack` is read: the mark swaps it
        self.stack.append(Call(Global("builtins", "frozenset"), (items,)))

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
        try:
            self.stack.append(self.memo[arg])
        except KeyError:
            raise PickleScanError(f"memo key {self._memo_index(arg)} not defined") from None

    op_BINGET = op_LONG_BINGET = op_GET

    def op_PUT(self, arg):
        if not self.stack:
            raise PickleScanError("stack underflow")
        self.memo[self._memo_index(arg)] = self.stack[-1]

    op_BINPUT = op_LONG_BINPUT = op_PUT

    def op_MEMOIZE(self, arg):
        self.op_PUT(len(self.memo))

    def op_GLOBAL(self, arg):
        module, _, name = str(arg).partition(" ")
        self.stack.append(self._global(module, name))

    def op_STACK_GLOBAL(self, arg):
        name = self._pop()
        module = self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleScanError("STACK_GLOBAL needs two strings")
        self.stack.append(self._global(module, name))

    def op_EXT1(self, arg):
        q = f"<extension code {arg}>"
        if q not in self.globals:
            self.globals.append(q)
            self.uses[q] = IMPORTS
        self.stack.append(Global("<extension>", str(arg)))

    op_EXT2 = op_EXT4 = op_EXT1

    def op_REDUCE(self, arg):
        args = self._pop()
        func = self._pop()
        self.stack.append(self._call(func, args))

    def op_NEWOBJ(self, arg):
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._call(cls, args, CONSTRUCTS))

    def op_NEWOBJ_EX(self, arg):
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        obj = self._call(cls, args, CONSTRUCTS)
        if isinstance(obj, Call):
            obj.items.append(("**kwargs", kwargs))
        self.stack.append(obj)

    def op_INST(self, arg):
        module, _, name = str(arg).partition(" ")
        cls = self._global(module, name)
        args = tuple(self._pop_mark())  # before `self.stack` is read: the mark swaps it
        self.stack.append(self._call(cls, args, CONSTRUCTS))

    def op_OBJ(self, arg):
        items = self._pop_mark()
        if not items:
            raise PickleScanError("OBJ without a class")
        self.stack.append(self._call(items[0], tuple(items[1:]), CONSTRUCTS))

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
            cls = class_of(target)
            if cls == "joblib.numpy_pickle.NumpyArrayWrapper":
                self.pending_array = state  # joblib reads the array's bytes right here
            elif cls in SCRIPT_OBJECT:
                self._torchbind(state)
        elif isinstance(target, TensorInfo):
            pass  # tensor subclass state: ignored
        else:
            raise PickleScanError("BUILD on an unsupported object")

    def _torchbind(self, state) -> None:
        """``ScriptObject.__setstate__((state, qualname))`` builds the TorchBind (C++) class
        ``qualname`` names and runs its ``__setstate__``: that class is what the pickle
        constructs, named as ``torch.classes.<namespace>.<Class>``."""
        qualname = state[1] if isinstance(state, tuple) and len(state) == 2 else None
        if isinstance(qualname, str) and qualname.startswith("__torch__.torch.classes."):
            module, _, name = qualname[len("__torch__."):].rpartition(".")
            g = self._global(module, name)
        else:
            g = self._global("<TorchBind>", "class not named in the state")
        self._use(g, CONSTRUCTS)

    def op_PERSID(self, arg):
        self._persistent(str(arg))

    def op_BINPERSID(self, arg):
        self._persistent(self._pop())

    def _persistent(self, pid):
        self.persistent_ids += 1
        info = storage_from_pid(pid)
        if info is None:
            self.stack.append(Call(Global("<persistent_load>", "unknown"), (pid,) if not isinstance(pid, tuple) else pid))
            return
        known = self.storages.get(info.key)
        if known is None:
            self.storages[info.key] = info
        else:
            info = known
        self.stack.append(info)


# opcode name -> unbound handler, looked up once instead of getattr per opcode
HANDLERS = {name[3:]: fn for name, fn in vars(InertMachine).items() if name.startswith("op_")}
_CONTAINERS = {PList, PDict, tuple, Call, list, dict}
