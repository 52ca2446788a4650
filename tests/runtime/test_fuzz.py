"""Mutated checkpoints never crash the reader and never pass unchecked (fail closed)."""

from __future__ import annotations

import io
import pathlib
import pickle
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptlint.verify import verify
from ckptlint.reader.reader import read_checkpoint

FILE_CODES = {"CKPT101", "CKPT102", "CKPT108", "CKPT109", "CKPT111"}
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("seed")
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    torch.save(m.state_dict(), folder / "z.pt")
    torch.save(m.state_dict(), folder / "l.pt", _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(folder / "z.pt") as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        members = {n: z.read(n) for n in names}
    return folder, members, pkl


def rezip(members, pkl, data) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            z.writestr(name, data if name == pkl else content)
    return buf.getvalue()


def mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for pos, value, kind in edits:
        if not out:
            break
        i = pos % len(out)
        if kind == 0:
            out[i] = value
        elif kind == 1:
            del out[i]
        else:
            out.insert(i, value)
    return bytes(out)


def check_once(path: pathlib.Path):
    diags, _ = verify([], [path], root=path.parent, torch_version="2.0", safe_globals=[])
    got = {d.code for d in diags}
    assert got <= FILE_CODES
    ck = read_checkpoint(path)
    if ck.pickle_error:
        assert "CKPT101" in got and "CKPT109" in got
    return ck, got


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2)),
                 min_size=1, max_size=4)


@pytest.mark.slow
@SETTINGS
@given(edits=EDITS)
def test_mutated_data_pkl_with_valid_crc(seed_files, tmp_path, edits):
    folder, members, pkl = seed_files
    p = tmp_path / "m.pt"
    p.write_bytes(rezip(members, pkl, mutate(members[pkl], edits)))
    ck, got = check_once(p)
    if "CKPT101" not in got and ck.format == "zip":
        # whatever we passed must not be a pickle torch's weights-only unpickler rejects
        # because of a global: our allowlist is no wider than torch's
        import torch

        try:
            torch.load(p, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - many mutations are simply broken files
            assert "Unsupported global" not in str(exc) and "GLOBAL" not in str(exc), str(exc)[:300]


@SETTINGS
@given(edits=EDITS)
def test_mutated_legacy_stream(seed_files, tmp_path, edits):
    folder, _members, _pkl = seed_files
    p = tmp_path / "m.pt"
    p.write_bytes(mutate((folder / "l.pt").read_bytes(), edits))
    check_once(p)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path, data):
    p = tmp_path / "r.pt"
    p.write_bytes(data)
    check_once(p)


@pytest.mark.slow
@SETTINGS
@given(obj=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.binary(max_size=5) | st.frozensets(st.integers(0, 3), max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    | st.tuples(inner, inner), max_leaves=20), proto=st.integers(0, 5))
def test_plain_pickles_agree_with_torchs_weights_only_unpickler(tmp_path, obj, proto):
    wo = pytest.importorskip("torch._weights_only_unpickler")
    data = pickle.dumps(obj, protocol=proto)
    p = tmp_path / "plain.pt"
    p.write_bytes(data)
    ck, got = check_once(p)
    assert ck.format == "pickle" and got <= {"CKPT101"}
    try:
        wo.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        if "Unsupported global" in str(exc):
            assert got == {"CKPT101"}, (obj, proto)
    else:
        assert got == set(), (obj, proto, ck.globals)


class _Recorder(pickle.Unpickler):
    """The real unpickler, recording every global it imports (used on our own benign data)."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.seen = set()

    def find_class(self, module, name):
        obj = super().find_class(module, name)
        self.seen.add(f"{module}.{name}")
        return obj


def _stdlib_objects():
    import collections
    import datetime
    import decimal
    import fractions
    import uuid

    leaf = st.one_of(
        st.integers(), st.text(max_size=3), st.binary(max_size=3), st.complex_numbers(allow_nan=False),
        st.dates().map(lambda d: d), st.datetimes(), st.decimals(allow_nan=False),
        st.fractions(), st.uuids(), st.frozensets(st.integers(0, 3), max_size=2),
        st.sets(st.integers(0, 3), max_size=2), st.binary(max_size=3).map(bytearray),
        st.integers(0, 5).map(range), st.timedeltas(),
    )
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3).map(collections.deque)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3).map(collections.OrderedDict)
        | st.lists(inner, max_size=3) | st.tuples(inner, inner),
        max_leaves=12,
    ), (collections, datetime, decimal, fractions, uuid)


@SETTINGS
@given(obj=_stdlib_objects()[0], proto=st.integers(0, 5))
def test_scan_names_every_global_the_real_unpickler_imports(obj, proto):
    from ckptlint.reader.pickle_scan import scan
    from ckptlint.reader.records import map_py2

    data = pickle.dumps(obj, protocol=proto)
    rec = _Recorder(data)
    rec.load()
    expected = {"{}.{}".format(*map_py2(*g.rsplit(".", 1))) for g in rec.seen}
    assert expected <= set(scan(data).globals)


def test_truncated_hostile_pickle_still_names_its_global(tmp_path):
    from ckptlint.reader.pickle_scan import scan
    from ckptlint.reader.records import PickleScanError

    data = b"\x80\x04\x95\x0f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93X\x05\x00\x00\x00touch"
    with pytest.raises(PickleScanError) as info:
        scan(data)
    assert "posix.system" in info.value.globals
    p = tmp_path / "cut.pt"
    p.write_bytes(data)
    diags, _ = verify([], [p], root=tmp_path, torch_version=None, safe_globals=[])
    d101 = [d for d in diags if d.code == "CKPT101"]
    assert d101 and "`posix.system`" in d101[0].message and d101[0].severity == "error"
