"""reader/source.py: the one way the reader and verify open, stat, list and test paths, for
local files and URLs alike."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from ckptlint.reader import source
from tests.helpers import HANG, ROOT

# calls that touch the file system, which reader/ and verify/ make only through source.py
FORBIDDEN = {
    ("os", "listdir"), ("os", "walk"), ("os", "stat"), ("os", "scandir"), ("os.path", "exists"),
    ("os.path", "isfile"), ("os.path", "isdir"), ("os.path", "getsize"), ("os.path", "lexists"),
    ("glob", "glob"), ("glob", "iglob"), ("os.path", "abspath"), ("os.path", "join"),
    ("os.path", "dirname"), ("os.path", "normpath"), ("os.path", "relpath"),
}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_reader_and_verify_reach_files_only_through_source():
    offences = []
    for folder in ("reader", "verify"):
        for path in sorted((ROOT / "ckptlint" / folder).glob("*.py")):
            if path.name in ("source.py", "urls.py", "remote.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = _dotted(node.func)
                if name == "open" or name.rpartition(".")[::2] in FORBIDDEN or name in ("io.open", "Path.open"):
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
    assert offences == [], "use ckptlint.reader.source instead:\n" + "\n".join(offences)


def test_the_guard_sees_a_direct_open(tmp_path):
    tree = ast.parse("with open(p, 'rb') as f:\n    os.path.isfile(p)\n")
    names = [_dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert "open" in names and ("os.path", "isfile") in [n.rpartition(".")[::2] for n in names]


@pytest.mark.parametrize("path, expected", [
    ("s3://bucket/a/b.pt", True), ("https://host/x.safetensors", True), ("hf://org/repo/f.bin", True),
    ("gs://b/k", True), ("/tmp/x.pt", False), ("C:\\x\\y.pt", False), ("weights/x.pt", False),
    ("file.pt", False),
])
def test_is_url(path, expected):
    assert source.is_url(path) is expected


def test_url_path_arithmetic_keeps_the_scheme():
    assert source.join("s3://b/run/ckpt", "__0_0.distcp") == "s3://b/run/ckpt/__0_0.distcp"
    assert source.join("s3://b/run/ckpt/", "a", "b.pt") == "s3://b/run/ckpt/a/b.pt"
    assert source.dirname("s3://b/run/ckpt/.metadata") == "s3://b/run/ckpt"
    assert source.dirname("s3://b") == "s3://b"
    assert source.normpath("s3://b/run/./x/../y.pt") == "s3://b/run/y.pt"
    assert source.abspath("https://h:8000/a/b/") == "https://h:8000/a/b/"  # a web folder keeps its /
    assert source.abspath("s3://b/a/") == "s3://b/a"
    assert source.basename("hf://org/repo/model.safetensors") == "model.safetensors"
    assert source.relpath("s3://b/run/ckpt/x.distcp", "s3://b/run/ckpt") == "x.distcp"
    assert source.relpath("s3://b/run/other/x.distcp", "s3://b/run/ckpt").startswith("..")
    assert source.isabs("s3://b/x") and not source.isabs("x.pt")


def test_local_paths_behave_as_os(tmp_path):
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "x.pt"
    f.write_bytes(b"12345")
    assert source.stat(str(f)) == source.Stat(5, False)
    assert source.isfile(str(f)) and not source.isdir(str(f)) and source.isdir(str(tmp_path / "d"))
    assert not source.exists(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):
        source.stat(str(tmp_path / "nope"))
    assert source.listdir(str(tmp_path / "d")) == ["x.pt"]
    assert list(source.walk(str(tmp_path))) == list(os.walk(str(tmp_path)))
    with source.open_file(str(f)) as handle:
        assert handle.fileno() >= 0  # a real file: the pickle scanner maps it
        assert handle.read() == b"12345"


def test_local_reading_never_imports_fsspec(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04K\x01.")
    code = ("import sys; from ckptlint.verify import verify; verify([], [sys.argv[1]], root='.', "
            "torch_version=None, safe_globals=[]); print('fsspec' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.pkl")], capture_output=True, text=True,
                         timeout=HANG, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
