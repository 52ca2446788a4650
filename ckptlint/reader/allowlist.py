"""Which globals a checkpoint may name (CKPT101).

A pickle can only run code through the globals it names: the callables it calls and the
classes it builds (whose ``__new__``, ``__init__``, ``__setstate__``, ``__setitem__`` and
``append`` the unpickler calls). So every global is judged on its own:

- ``WEIGHTS_ONLY_ALLOWED``, a static copy of torch's weights-only allowlist
  (``torch._weights_only_unpickler._get_allowed_globals()`` in torch 2.13, compared with the
  real one in the tests), and the project's ``safe-globals``: fine.
- ``DATA``: a short, reviewed list of data types that torch's weights-only loading refuses
  but that only build a value from their arguments and call none of them (a class or
  callable passed to them is a global of its own, judged on its own). They need
  allowlisting, not alarm: a warning that says how.
- everything else: the file runs code when loaded with ``weights_only=False``, an error. A
  list of known-dangerous names would always lag behind the gadgets people find; this
  inverts it.

``DANGER_MODULES`` / ``DANGER_NAMES`` only sharpen the wording and stop ``safe-globals`` from
allowing the obvious (``os.system``): they are matched against every dotted part of a global
(``pathlib.os.system`` has the part ``os``), after the Python 2 renaming.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

_TORCH_TENSOR_TYPES = (
    "BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short",
)
_TORCH_STORAGE_ONLY = ("ComplexDouble", "ComplexFloat")
_QSTORAGES = ("QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8")
_DTYPES = (
    "bfloat16 bits16 bits1x8 bits2x4 bits4x2 bits8 bool complex128 complex32 complex64 "
    "float16 float32 float4_e2m1fn_x2 float64 float8_e4m3fn float8_e4m3fnuz float8_e5m2 "
    "float8_e5m2fnuz float8_e8m0fnu int1 int16 int2 int3 int32 int4 int5 int6 int64 int7 int8 "
    "qint32 qint8 quint2x4 quint4x2 quint8 uint1 uint16 uint2 uint3 uint32 uint4 uint5 uint6 "
    "uint64 uint7 uint8"
).split()
_QSCHEMES = (
    "per_channel_affine per_channel_affine_float_qparams per_channel_symmetric "
    "per_tensor_affine per_tensor_symmetric"
).split()
_REBUILD = (
    "_rebuild_device_tensor_from_cpu_tensor _rebuild_device_tensor_from_numpy "
    "_rebuild_meta_tensor_no_storage _rebuild_nested_tensor _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor _rebuild_tensor "
    "_rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_wrapper_subclass"
).split()


def _build() -> frozenset:
    names = {
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.set",
        "collections.Counter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.Tensor",
        "torch._tensor._rebuild_from_type_v2",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
    }
    for t in _TORCH_TENSOR_TYPES:
        names.update({f"torch.{t}Storage", f"torch.{t}Tensor", f"torch.cuda.{t}Storage",
                      f"torch.cuda.{t}Tensor"})
        if t != "Bool":
            names.update({f"torch.sparse.{t}Tensor", f"torch.cuda.sparse.{t}Tensor"})
    for t in _TORCH_STORAGE_ONLY:
        names.update({f"torch.{t}Storage", f"torch.cuda.{t}Storage"})
    names.update(f"torch.{q}Storage" for q in _QSTORAGES)
    names.update(f"torch.{d}" for d in _DTYPES)
    names.update(f"torch.{q}" for q in _QSCHEMES)
    names.update(f"torch._utils.{r}" for r in _REBUILD)
    return frozenset(names)


WEIGHTS_ONLY_ALLOWED = _build()

DANGER_MODULES = frozenset(
    """os posix nt subprocess sys shutil socket ctypes _ctypes importlib imp runpy pty
    commands popen2 webbrowser code codeop multiprocessing threading _thread signal pickle
    _pickle cPickle marshal shelve dill cloudpickle joblib pip setuptools distutils
    asyncio http urllib urllib2 requests ftplib smtplib telnetlib _io _posixsubprocess
    _winapi msvcrt winreg pydoc timeit trace pdb bdb cProfile profile types operator
    functools""".split()
)
DANGER_NAMES = frozenset(
    """eval exec execfile compile __import__ open getattr setattr delattr globals locals vars
    input breakpoint system popen spawn spawnl spawnv execv execve execl execvp fork
    posix_spawn check_output check_call run call Popen load loads __builtins__
    __reduce__ __reduce_ex__ __globals__ __subclasses__ apply attrgetter methodcaller
    itemgetter partial""".split()
)


def parts(qualname: str) -> List[str]:
    return [p for p in qualname.replace(":", ".").split(".") if p]


def is_dangerous(qualname: str) -> bool:
    if qualname in DATA:  # reviewed by name (numpy.random._pickle is not the pickle module)
        return False
    if qualname.startswith("<"):  # unresolved STACK_GLOBAL, extension codes
        return True
    return any(p in DANGER_MODULES or p in DANGER_NAMES for p in parts(qualname))


def user_allows(qualname: str, safe_globals: Iterable[str]) -> bool:
    for pattern in safe_globals:
        if pattern.endswith(".*"):
            if qualname.startswith(pattern[:-1]):
                return True
        elif qualname == pattern:
            return True
    return False


def classify(globals_: Iterable[str], safe_globals: Iterable[str] = ()) -> Tuple[List[str], List[str]]:
    """Return (code, data): the globals that run code on load and the reviewed data types
    that need allowlisting, sorted. Dangerous globals count as code even when the user
    listed them in safe-globals."""
    safe = list(safe_globals)
    code, data = set(), set()
    for g in globals_:
        if is_dangerous(g):
            code.add(g)
        elif g in WEIGHTS_ONLY_ALLOWED or user_allows(g, safe):
            continue
        elif g in DATA:
            data.add(g)
        else:
            code.add(g)
    return sorted(code), sorted(data)


_NUMPY_ARRAY = "builds a numpy array of the class and dtype it is given (each judged on its own)"
_NUMPY_SCALAR = "a numpy scalar from a dtype and its raw bytes"
_BIT_GENERATOR = "a numpy bit generator, restored from its state"
_RNG_CTOR = ("looks a numpy bit generator up by name in numpy's own table (a class or "
             "callable it is given instead is judged on its own)")
_PATH = "a file path value (nothing is opened)"
_TIME = "a date or time value"
_BUILTIN = "a builtin type, built from already-loaded values"

# Reviewed data types: torch's weights-only loading refuses them, but building them runs no
# code beyond their own constructors, which only store values. Name -> why it is safe.
DATA: Dict[str, str] = {
    "numpy.core.multiarray._reconstruct": _NUMPY_ARRAY,
    "numpy._core.multiarray._reconstruct": _NUMPY_ARRAY,
    "numpy.ndarray": "the numpy array class; its state is raw bytes or already-loaded objects",
    "numpy.dtype": "a numpy dtype from its type code",
    "numpy.core.multiarray.scalar": _NUMPY_SCALAR,
    "numpy._core.multiarray.scalar": _NUMPY_SCALAR,
    "numpy.random._pickle.__randomstate_ctor": _RNG_CTOR,
    "numpy.random._pickle.__generator_ctor": _RNG_CTOR,
    "numpy.random._pickle.__bit_generator_ctor": _RNG_CTOR,
    "numpy.random._mt19937.MT19937": _BIT_GENERATOR,
    "numpy.random._pcg64.PCG64": _BIT_GENERATOR,
    "numpy.random._pcg64.PCG64DXSM": _BIT_GENERATOR,
    "numpy.random._philox.Philox": _BIT_GENERATOR,
    "numpy.random._sfc64.SFC64": _BIT_GENERATOR,
    "numpy.random.bit_generator.SeedSequence": "numpy's seed sequence, restored from its fields",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence":
        "Cython's restore helper for numpy's seed sequence: checks a checksum, sets fields",
    "argparse.Namespace": "a plain attribute container (training arguments)",
    "collections.defaultdict": "a dict whose default factory is stored, not called, on load",
    "collections.deque": "a double-ended queue of already-loaded values",
    "datetime.datetime": _TIME,
    "datetime.date": _TIME,
    "datetime.time": _TIME,
    "datetime.timedelta": _TIME,
    "datetime.timezone": _TIME,
    "pathlib.Path": _PATH,
    "pathlib.PosixPath": _PATH,
    "pathlib.WindowsPath": _PATH,
    "pathlib.PurePath": _PATH,
    "pathlib.PurePosixPath": _PATH,
    "pathlib.PureWindowsPath": _PATH,
    "pathlib._local.PosixPath": _PATH,
    "pathlib._local.WindowsPath": _PATH,
    "decimal.Decimal": "a decimal number",
    "fractions.Fraction": "a fraction",
    "uuid.UUID": "a UUID value",
    "builtins.object": "the base class `copyreg._reconstructor` is given for plain classes",
    "builtins.list": _BUILTIN,
    "builtins.dict": _BUILTIN,
    "builtins.tuple": _BUILTIN,
    "builtins.int": _BUILTIN,
    "builtins.float": _BUILTIN,
    "builtins.str": _BUILTIN,
    "builtins.bool": _BUILTIN,
    "builtins.slice": _BUILTIN,
    "builtins.range": _BUILTIN,
    "builtins.frozenset": _BUILTIN,
    "copyreg._reconstructor": ("instantiates the class it is given (judged on its own), calling "
                               "only the `__init__` of the base class it names (judged too)"),
    "copyreg.__newobj__": "calls `cls.__new__` of the class it is given (judged on its own)",
    "torch.torch_version.TorchVersion": "`torch.__version__`: a string",
    "joblib.numpy_pickle.NumpyArrayWrapper":
        "joblib's placeholder for the array bytes that follow it in the file (read as raw data)",
    "torch.ScriptObject": "a TorchBind object: builds the C++ class its state names (judged on its own)",
}

# TorchBind classes a `torch.ScriptObject` builds (named in its state, not as a global:
# `safe_globals` needs only `torch.ScriptObject`). torch's quantized packed weights: their C++
# `__setstate__` packs the tensors and numbers of the state, nothing else.
_PACKED = "torch's quantized packed weights: its C++ `__setstate__` packs tensors and numbers"
TORCHBIND = {
    "torch.classes.rnn.CellParamsBase": _PACKED,
    "torch.classes.quantized.LinearPackedParamsBase": _PACKED,
    "torch.classes.quantized.Conv2dPackedParamsBase": _PACKED,
    "torch.classes.quantized.Conv3dPackedParamsBase": _PACKED,
    "torch.classes.quantized.EmbeddingPackedParamsBase": _PACKED,
}
DATA.update(TORCHBIND)

# torch.distributed.checkpoint's `.metadata` (read with plain `pickle.load`): dataclasses of
# names, shapes, offsets and byte ranges, an enum for the memory format
_DCP = "a torch.distributed.checkpoint metadata record: names, shapes and byte ranges"
DCP_METADATA = frozenset(
    f"torch.distributed.checkpoint.{name}" for name in (
        "metadata.Metadata", "metadata.TensorStorageMetadata", "metadata.TensorProperties",
        "metadata.ChunkStorageMetadata", "metadata.BytesStorageMetadata", "metadata.MetadataIndex",
        "metadata.StorageMeta", "metadata._MEM_FORMAT_ENCODING", "filesystem._StorageInfo",
        "filesystem._StoragePrefix")
) | {"pathlib.PosixPath", "pathlib.WindowsPath", "pathlib._local.PosixPath", "pathlib._local.WindowsPath"}
DATA.update({name: _DCP for name in DCP_METADATA if name not in DATA})


# The class of a numpy dtype instance (numpy 1.25+): `numpy.dtype("f8")` builds a
# `numpy.dtypes.Float64DType`, and torch's weights-only loading checks the class of every
# object it sets state on, so that class must be allowed too although the file never names it.
_DTYPE_KINDS = {"b": "Bool", "?": "Bool", "O": "Object", "U": "Str", "S": "Bytes", "a": "Bytes",
                "V": "Void", "M": "DateTime64", "m": "TimeDelta64"}
_DTYPE_SIZED = {"i": ("Int", 8), "u": ("UInt", 8), "f": ("Float", 8), "c": ("Complex", 4)}
_LONG = {"f16": "LongDouble", "f12": "LongDouble", "c32": "CLongDouble", "c24": "CLongDouble"}


def dtype_class(code: str):
    """`numpy.dtypes.Float32DType` for the type code `f4` a pickled dtype carries, or None."""
    code = code.lstrip("<>|=")
    if not code:
        return None
    if code in _LONG:
        return f"numpy.dtypes.{_LONG[code]}DType"
    kind, size = code[0], code[1:]
    if kind in _DTYPE_KINDS:
        return f"numpy.dtypes.{_DTYPE_KINDS[kind]}DType"
    if kind in _DTYPE_SIZED and size.isdigit():
        name, bits_per = _DTYPE_SIZED[kind]
        return f"numpy.dtypes.{name}{int(size) * bits_per}DType"
    return None


for _kind in list(_DTYPE_KINDS.values()) + list(_LONG.values()) + [
        f"{n}{b}" for n, sizes in (("Int", (8, 16, 32, 64)), ("UInt", (8, 16, 32, 64)),
                                   ("Float", (16, 32, 64)), ("Complex", (64, 128))) for b in sizes]:
    DATA[f"numpy.dtypes.{_kind}DType"] = "the class of a numpy dtype (numpy 1.25+)"


def _numpy_version() -> Tuple[int, int]:
    try:
        from importlib.metadata import version

        major, minor = version("numpy").split(".")[:2]
        return int(major), int(minor)
    except Exception:  # noqa: BLE001 - not installed, or an odd version string
        return (2, 0)


def _numpy_major() -> int:
    return _numpy_version()[0]


def safe_globals_call(names: Iterable[str], implied: Iterable[str] = ()) -> str:
    """The ``torch.serialization.safe_globals([...])`` argument that lets
    ``torch.load(weights_only=True)`` read these globals here: an object's own
    ``module.qualname`` must equal the name in the file, so where numpy moved a name
    (``numpy.core`` became ``numpy._core`` in numpy 2) the entry is ``(object, "name in
    the file")``. ``implied``: classes the file builds without naming them (numpy's dtype
    classes, which exist from numpy 1.25)."""
    names = [n for n in names if n not in TORCHBIND]  # built by torch.ScriptObject, never looked up
    numpy_core = "numpy._core." if _numpy_major() >= 2 else "numpy.core."
    if _numpy_version() >= (1, 25):
        names = set(names) | set(implied)
    items = []
    for name in sorted(names):
        here = name
        for old in ("numpy.core.", "numpy._core."):
            if name.startswith(old):
                here = numpy_core + name[len(old):]
        items.append(here if here == name else f'({here}, "{name}")')
    return f"torch.serialization.safe_globals([{', '.join(items)}])"
