"""Pickle opcodes written by hand, and the payloads the hostile corpus uses.

Every payload proves it ran by creating a marker file: the tests look for that file after
the real loader (must exist) and after `ckptlint verify` (must not).
"""

from __future__ import annotations

import pickle
import struct
from pickle import EMPTY_DICT, MARK, NONE, POP, REDUCE, STOP, TUPLE, TUPLE1, TUPLE2, TUPLE3  # noqa: F401

PROTO2 = pickle.PROTO + b"\x02"
PROTO4 = pickle.PROTO + b"\x04"


def sbu(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu(s: str) -> bytes:  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def binint(n: int) -> bytes:  # BININT
    return b"J" + struct.pack("<i", n)


def glob(module: str, name: str) -> bytes:  # GLOBAL: dotted names resolve under protocol >= 4
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def frame(body: bytes, length: int = None) -> bytes:
    """A FRAME opcode announcing `length` bytes (default: the body's own length)."""
    return b"\x95" + struct.pack("<Q", len(body) if length is None else length) + body


def touch_cmd(marker) -> str:
    return f"touch {marker}"


def system_call(marker, module: str = "posix") -> bytes:
    """`posix.system("touch MARKER")`: the value it leaves on the stack is an int."""
    return glob(module, "system") + bu(touch_cmd(marker)) + TUPLE1 + REDUCE


def code_line(marker) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def missing_global(tag: str) -> bytes:
    """A global no loader can import: the load fails right after what came before it ran,
    and the name tells which record a scanner read."""
    return glob(f"diffmark_{tag}", "x")


def hostile(marker, tag: str = None, protocol: bytes = PROTO2) -> bytes:
    """A whole pickle: touch the marker, then (with a tag) name a missing global."""
    body = system_call(marker)
    if tag is not None:
        body += POP + missing_global(tag)
    return protocol + body + STOP


# -- gadgets: callables outside any name-based danger list that run code ----------------


def gadgets(marker) -> dict:
    """name -> (module, qualified name, argument-tuple opcodes): calling it touches MARKER."""
    m = str(marker)
    cmd = touch_cmd(m)
    line = code_line(m)
    nested = pickle.dumps(_Touch(m), protocol=2)
    path = glob("pathlib", "PosixPath") + bu(m) + TUPLE1 + REDUCE
    return {
        "tempfile_os_spawnlp": ("tempfile", "_os.spawnlp",
                                MARK + binint(0) + bu("touch") + bu("touch") + bu(m) + TUPLE),
        "inductor_run_compile_cmd": ("torch._inductor.cpp_builder", "_run_compile_cmd",
                                     bu(cmd) + bu("/") + TUPLE2),
        "config_module_load_config": ("torch.utils._config_module", "ConfigModule.load_config",
                                      NONE + binbytes(nested) + TUPLE2),
        "jit_exec_wrapper": ("torch.jit.unsupported_tensor_ops", "execWrapper",
                             bu(line) + EMPTY_DICT + EMPTY_DICT + TUPLE3),
        "idlelib_get_entity": ("idlelib.calltip", "get_entity",
                               bu(f"__import__('os').system({cmd!r})") + TUPLE1),
        "uuid_get_command_stdout": ("uuid", "_get_command_stdout", bu("touch") + bu(m) + TUPLE2),
        "osx_support_read_output": ("_osx_support", "_read_output", bu(cmd) + TUPLE1),
        "numpy_runstring": ("numpy.testing._private.utils", "runstring", bu(line) + EMPTY_DICT + TUPLE2),
        "collect_env_run": ("torch.utils.collect_env", "run", bu(cmd) + TUPLE1),
        "io_open": ("io", "open", bu(m) + bu("w") + TUPLE2),
        "pathlib_touch": ("pathlib", "Path.touch", path + TUPLE1),
    }


def gadget_pickle(module: str, name: str, args: bytes) -> bytes:
    return PROTO4 + glob(module, name) + args + REDUCE + STOP


def binbytes(b: bytes) -> bytes:  # BINBYTES
    return b"B" + struct.pack("<I", len(b)) + b


class _Touch:
    """Pickles as `posix.system("touch MARKER")` (the nested pickle of load_config)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import posix

        return posix.system, (touch_cmd(self.marker),)
