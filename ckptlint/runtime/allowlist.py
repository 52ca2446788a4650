"""Which globals a checkpoint may name (CKPT101).

``WEIGHTS_ONLY_ALLOWED`` is a static copy of torch's weights-only allowlist
(``torch._weights_only_unpickler._get_allowed_globals()`` in torch 2.13), kept static so
that CKPT101 needs no torch. tests/runtime/test_allowlist.py compares it with the real one.

``DANGER_MODULES`` / ``DANGER_NAMES`` are matched against every dotted part of a global
(``pathlib.os.system`` has the part ``os``; ``builtins.exec.__call__`` has ``exec``), after
the Python 2 renaming; a match makes CKPT101 an error.
"""

from __future__ import annotations

from typing import Iterable, List, Tuple

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
    """Return (dangerous, other disallowed) globals, sorted. Dangerous globals are reported
    even when the user listed them in safe-globals."""
    safe = list(safe_globals)
    danger, other = set(), set()
    for g in globals_:
        if is_dangerous(g):
            danger.add(g)
        elif g not in WEIGHTS_ONLY_ALLOWED and not user_allows(g, safe):
            other.add(g)
    return sorted(danger), sorted(other)
