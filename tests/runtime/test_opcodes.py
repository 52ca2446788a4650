"""The opcode reader against CPython's own unpickler on frames that end inside an
instruction: whatever the C unpickler calls, reading from bytes (``pickle.loads``) or from a
file object without ``peek`` (``io.BytesIO``, torch's ``data.pkl``), the scan names.

Each pickle calls ``tests.runtime.test_opcodes.record(tag)``, which only appends to a list,
so the real unpickler can run them here."""

from __future__ import annotations

import io
import pickle
import struct

import pytest

from ckptlint.reader.pickle_scan import scan
from ckptlint.reader.records import PickleScanError

CALLED: list = []
HERE = __name__


def record(tag):
    CALLED.append(tag)


def sbu(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def call(tag: str) -> bytes:
    """STACK_GLOBAL of record (or of a name made from tag), called with tag, then POP."""
    return sbu(HERE) + sbu("record") + b"\x93" + sbu(tag) + b"\x85R0"


def frame(body: bytes, length=None) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body) if length is None else length) + body


def cases() -> dict:
    after = call("after") + b"N."
    return {
        # a SHORT_BINUNICODE of 5 bytes with 2 in the frame: BytesIO drops "ab"
        "unicode_straddle": b"\x80\x04" + frame(b"\x8c\x05ab") + b"recor" + b"0" + after,
        # BINBYTES payloads are read "into" the buffer: the frame's tail is kept
        "bytes_straddle": b"\x80\x04" + frame(b"C\x05ab") + b"cde" + b"0" + after,
        # the text GLOBAL opcode reads lines: the line is cut at the frame end
        "global_line_straddle": b"\x80\x04" + frame(b"c" + HERE.encode()[:4]) + HERE.encode()[4:]
        + b"\nrecord\n" + sbu("g") + b"\x85R0" + after,
        # a FRAME inside a frame that outlasts it
        "nested_frame": b"\x80\x04" + frame(call("first") + b"\x95" + struct.pack("<Q", 40))
        + call("inner") + b"N.",
        # no straddle: both readers agree
        "plain": b"\x80\x04" + frame(call("one")) + frame(call("two") + b"N."),
    }


def run(data: bytes, as_file: bool) -> list:
    CALLED.clear()
    try:
        if as_file:
            pickle.Unpickler(io.BytesIO(data)).load()
        else:
            pickle.loads(data)
    except Exception:  # noqa: BLE001 - what ran before the failure is what matters
        pass
    return list(CALLED)


@pytest.mark.parametrize("name", sorted(cases()))
def test_scan_names_whatever_either_reader_calls(name):
    data = cases()[name]
    ran = run(data, as_file=True) + run(data, as_file=False)
    try:
        result = scan(data)
        names, uses = result.globals, result.uses
    except PickleScanError as exc:
        names, uses = exc.globals, exc.uses
    assert ran, "each case runs something under one of the readers"
    assert f"{HERE}.record" in names and uses[f"{HERE}.record"] == "calls", (name, ran, names)


def test_a_straddling_frame_is_flagged_and_plain_frames_are_not():
    assert not scan(cases()["plain"]).straddled
    with pytest.raises(PickleScanError) as info:
        scan(cases()["unicode_straddle"])
    assert info.value.straddled


def test_bytesio_reading_drops_the_frame_tail():
    """The premise, checked on this CPython: the two readers really run different things."""
    data = cases()["unicode_straddle"]
    assert run(data, as_file=True) == ["after"]
    assert run(data, as_file=False) == []
