"""What torch's pickles mean, as tables: storage classes, item sizes, and how the rebuild
functions (``torch._utils._rebuild_tensor_v2`` ...) are read from their arguments."""

from __future__ import annotations

from typing import Optional, Tuple

from ckptlint.reader.records import Call, Global, StorageInfo, TensorInfo

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

TENSOR_REBUILDERS = {
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


def dtype_of(value) -> Optional[str]:
    if isinstance(value, Global) and value.module == "torch":
        return value.qualname
    return None


def shape_of(value) -> Optional[Tuple[int, ...]]:
    if isinstance(value, Call) and isinstance(value.func, Global) and value.func.qualname == "torch.Size":
        value = value.args[0] if value.args else ()
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def interpret_rebuild(name: str, args: tuple):
    """Interpret a torch rebuild call from its arguments (never calls torch)."""
    a = list(args)
    if name in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
        return a[0] if a and isinstance(a[0], TensorInfo) else None
    if name == "torch._tensor._rebuild_from_type_v2":
        # (func, new_type, args, state): the tensor is func(*args)
        if len(a) >= 3 and isinstance(a[0], Global) and isinstance(a[2], tuple):
            inner = a[0].qualname
            if inner in TENSOR_REBUILDERS and inner != name:  # no recursion on hostile input
                return interpret_rebuild(inner, a[2])
        return None
    if name == "torch._utils._rebuild_device_tensor_from_cpu_tensor":
        if a and isinstance(a[0], TensorInfo):
            dev = a[2] if len(a) > 2 and isinstance(a[2], str) else a[0].device
            return TensorInfo(a[0].dtype, a[0].shape, dev, a[0].storage)
        return None
    if name == "torch._utils._rebuild_meta_tensor_no_storage":
        return TensorInfo(dtype_of(a[0]) if a else None, shape_of(a[1]) if len(a) > 1 else None, "meta", None)
    if name in ("torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
                "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_qtensor"):
        storage = a[0] if a and isinstance(a[0], StorageInfo) else None
        shape = shape_of(a[2]) if len(a) > 2 else None
        dtype = storage.dtype if storage else None
        if name == "torch._utils._rebuild_tensor_v3" and len(a) > 6 and dtype_of(a[6]):
            dtype = dtype_of(a[6])
        device = storage.device if storage else "cpu"
        t = TensorInfo(dtype, shape, device, storage)
        offset = a[1] if len(a) > 1 and type(a[1]) is int else None
        stride = shape_of(a[3]) if len(a) > 3 else None
        if storage is not None and offset is not None and shape is not None and stride is not None:
            t.extent = _extent(offset, shape, stride)
        return t
    return TensorInfo(None, None, "cpu", None, kind="special")


def _extent(offset: int, shape: Tuple[int, ...], stride: Tuple[int, ...]) -> Optional[int]:
    """Elements of its storage a tensor view reaches (``offset`` + the farthest element + 1;
    0 for an empty tensor), or None when the view is not well formed."""
    if len(shape) != len(stride) or offset < 0 or any(n < 0 for n in shape) or any(s < 0 for s in stride):
        return None
    if any(n == 0 for n in shape):
        return 0
    return offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1


def out_of_bounds(t: TensorInfo) -> Optional[str]:
    """Why torch refuses to build this tensor on its storage (``set_``: the view reaches past
    the storage's end), or None."""
    st = t.storage
    if st is None or st.numel is None or t.extent is None:
        return None
    item = ITEMSIZE.get(t.dtype or "")
    if st.type_name in ("UntypedStorage", "TypedStorage"):
        if item is None:
            return None
        need, have = t.extent * item, st.numel
    else:
        need, have = t.extent, st.numel
    if need <= have:
        return None
    return f"a tensor of shape {t.shape} reaches element {need} of storage `{st.key}`, which holds {have}"


def storage_from_pid(pid) -> Optional[StorageInfo]:
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


# The opcodes torch's weights-only unpickler reads (``torch._weights_only_unpickler.
# Unpickler.load`` in torch 2.13, compared with the real one in the tests): anything else
# ("Unsupported operand") makes ``torch.load(weights_only=True)`` refuse the file, whatever
# its globals. torch.save's default protocol 2 writes only these; protocols 3-5 add BINBYTES,
# FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL ...
WEIGHTS_ONLY_OPCODES = frozenset(
    "GLOBAL NEWOBJ REDUCE BUILD APPEND APPENDS SETITEM SETITEMS MARK TUPLE TUPLE1 TUPLE2 TUPLE3 "
    "NONE NEWFALSE NEWTRUE EMPTY_TUPLE EMPTY_LIST EMPTY_DICT EMPTY_SET BININT BININT1 BININT2 "
    "BINFLOAT BINUNICODE SHORT_BINSTRING BINPERSID BINGET LONG_BINGET BINPUT LONG_BINPUT LONG1 "
    "PROTO STOP".split())
# the pickle protocol that introduced an opcode (what a refusal is blamed on)
_PROTOCOL_4 = {"FRAME", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES8", "EMPTY_SET", "ADDITEMS",
               "FROZENSET", "NEWOBJ_EX", "STACK_GLOBAL", "MEMOIZE"}
_PROTOCOL_5 = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}


def opcode_protocol(name: str) -> int:
    """The pickle protocol an opcode comes with (0-2: what protocol 2 may write)."""
    if name in _PROTOCOL_5:
        return 5
    if name in _PROTOCOL_4:
        return 4
    if name in ("BINBYTES", "SHORT_BINBYTES"):
        return 3
    return 2
