"""Hostile pickles from opcode recipes: each is reported (CKPT101), none runs.

Every recipe's payload would create a marker file. The reader runs in a subprocess under a
Python audit hook that records process, network and ctypes events; the test fails if any
fired or the marker exists. A control test proves the recipes and the hook are real by
unpickling two of them with the standard pickle module.
"""

from __future__ import annotations

import json
import pickle
import resource
import signal
import struct
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import HANG

from ._util import REPO, cli_env, run_cli
from .corpus.ops import bu, frame, sbu

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def recipes(marker: str) -> dict:
    """name -> (pickle bytes, the global the report must name)."""
    cmd = f"touch {marker}"
    code = f"open({marker!r}, 'w').close()"
    call_cmd = bu(cmd) + b"\x85R."
    return {
        "global_os_system": (b"\x80\x02cos\nsystem\n" + call_cmd, "os.system"),
        "global_posix_system": (b"\x80\x02cposix\nsystem\n" + call_cmd, "posix.system"),
        "stack_global_os_system": (b"\x80\x04" + sbu("os") + sbu("system") + b"\x93" + call_cmd, "os.system"),
        "stack_global_posix_system": (
            b"\x80\x04" + sbu("posix") + sbu("system") + b"\x93" + call_cmd, "posix.system"),
        "dotted_pathlib_os_system": (
            b"\x80\x04" + sbu("pathlib") + sbu("os.system") + b"\x93" + call_cmd, "pathlib.os.system"),
        "dotted_builtins_exec_call": (
            b"\x80\x04" + sbu("builtins") + sbu("exec.__call__") + b"\x93" + bu(code) + b"\x85R.",
            "builtins.exec.__call__"),
        "py2_builtin_eval": (b"\x80\x02c__builtin__\neval\n" + bu(code) + b"\x85R.", "builtins.eval"),
        "inst": (b"(S'" + cmd.encode() + b"'\nios\nsystem\n.", "os.system"),
        "obj": (b"(cos\nsystem\nS'" + cmd.encode() + b"'\no.", "os.system"),
        "split_across_frames": (
            b"\x80\x04" + frame(sbu("os") + sbu("system")) + frame(b"\x93" + bu(cmd) + b"\x85R."),
            "os.system"),
        "memo_indirection": (
            b"\x80\x04" + sbu("posix") + b"\x94" + sbu("system") + b"\x94" + b"0" + b"0"
            + b"h\x00h\x01\x93" + call_cmd, "posix.system"),
    }


def legacy_with(payload: bytes, position: int) -> bytes:
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2),
             pickle.dumps({}, 2), pickle.dumps([], 2)]
    parts[position] = payload
    return b"".join(parts)


def zip_with(payload: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def tar_with(payload: bytes) -> bytes:
    """The torch<0.4 tar format, which torch.load(weights_only=False) still unpickles."""
    import io
    import tarfile

    buf = io.BytesIO()
    members = {"sys_info": pickle.dumps({"protocol_version": 1001}, 2), "pickle": payload,
               "storages": pickle.dumps(0, 2) + pickle.dumps([], 2), "tensors": pickle.dumps(0, 2)}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def hostile_files(tmp_path, marker: str) -> dict:
    out = {}
    base = recipes(marker)
    for name, (data, g) in base.items():
        p = tmp_path / f"{name}.pt"  # a raw pickle named .pt
        p.write_bytes(data)
        out[name] = (p, g)
    posix = base["global_posix_system"][0]
    for pos in (0, 3):
        p = tmp_path / f"legacy_payload_in_pickle_{pos}.pt"
        p.write_bytes(legacy_with(posix, pos))
        out[p.stem] = (p, "posix.system")
    p = tmp_path / "zip_payload.pt"
    p.write_bytes(zip_with(base["stack_global_posix_system"][0]))
    out["zip_payload"] = (p, "posix.system")
    p = tmp_path / "tar_payload.pt"
    p.write_bytes(tar_with(posix))
    out["tar_payload"] = (p, "posix.system")
    return out


HARNESS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ckptlint.verify import verify as run
import ckptlint.verify.check, ckptlint.reader.reader, ckptlint.reader.pickle_scan  # noqa
# what the reader imports lazily (zipfile's cp437 names, tar and safetensors files, compressed
# pickles): importing a module is an exec event, and tarfile's shutil evals a namedtuple
import encodings.cp437, tarfile, json, bz2, lzma  # noqa
# and the rule modules, which findings take their names from
from ckptlint.rules import all_rules; all_rules()  # noqa
import pathlib
WATCH = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "os.startfile", "subprocess.", "socket.", "ctypes.", "pty.", "builtins.exec")
events = []
def hook(event, args):
    if event.startswith(WATCH) or event == "exec" or event == "compile" and args and args[1] != "<string>":
        events.append(event)
sys.addaudithook(hook)
files = sys.argv[2:]
diags, notes = run([], files, root=pathlib.Path("."), torch_version=None, safe_globals=[])
print(json.dumps({"events": events, "torch": "torch" in sys.modules,
                  "diags": [dict(d.to_json(), severity=d.severity) for d in diags]}))
"""


def run_harness(files, limit_bytes=None, cpu_seconds=None):
    """Run the verify harness on `files`; `limit_bytes` caps its memory and `cpu_seconds`
    its CPU time: the work it does, which other processes on a busy machine do not use up
    (unlike wall time)."""
    def limit():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        if cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))

    proc = subprocess.run([sys.executable, "-c", HARNESS, str(REPO), *map(str, files)],
                          capture_output=True, text=True, timeout=HANG, preexec_fn=limit)
    assert proc.returncode != -signal.SIGXCPU, f"over {cpu_seconds} s of CPU"
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def test_control_recipes_are_real_payloads_and_the_hook_sees_them(tmp_path):
    marker = tmp_path / "control-marker"
    probe = r"""
import pickle, sys, json
events = []
sys.addaudithook(lambda e, a: events.append(e) if e in ("os.system", "exec") else None)
try:
    pickle.loads(open(sys.argv[1], "rb").read())
except Exception:
    pass
print(json.dumps(events))
"""
    files = hostile_files(tmp_path, str(marker))
    for name, event in (("global_posix_system", "os.system"), ("dotted_builtins_exec_call", "exec")):
        if marker.exists():
            marker.unlink()
        proc = subprocess.run([sys.executable, "-c", probe, str(files[name][0])],
                              capture_output=True, text=True, timeout=HANG)
        assert event in json.loads(proc.stdout)
        assert marker.exists(), name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["legacy_payload_in_pickle_0", "zip_payload", "tar_payload"])
def test_control_torch_load_without_weights_only_runs_the_container_payloads(tmp_path, name):
    pytest.importorskip("torch")
    marker = tmp_path / "control-marker"
    path = hostile_files(tmp_path, str(marker))[name][0]
    code = "import sys, torch\ntry:\n    torch.load(sys.argv[1], weights_only=False)\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=HANG)
    assert marker.exists()


def test_hostile_pickles_are_reported_and_never_run(tmp_path):
    marker = tmp_path / "MARKER"
    files = hostile_files(tmp_path, str(marker))
    result = run_harness([p for p, _ in files.values()])
    assert result["events"] == []
    assert not marker.exists()
    assert result["torch"] is False
    by_file = {}
    for d in result["diags"]:
        by_file.setdefault(d["filename"], []).append(d)
    for name, (path, global_name) in files.items():
        found = by_file.get(str(path), [])
        d101 = [d for d in found if d["code"] == "CKPT101"]
        assert d101, (name, found)
        assert d101[0]["severity"] == "error", name
        assert f"`{global_name}`" in d101[0]["message"], (name, d101[0]["message"])
        assert d101[0]["key"] is None


def test_hostile_files_through_the_cli(tmp_path):
    marker = tmp_path / "MARKER"
    files = hostile_files(tmp_path, str(marker))
    paths = [p for p, _ in files.values()]
    proc = run_cli(*paths, "--output-format", "json", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert {d["filename"] for d in data if d["code"] == "CKPT101"} == {str(p) for p in paths}
    text = run_cli(*paths, cwd=tmp_path)
    assert "posix.system" in text.stdout and text.returncode == 1
    assert not marker.exists()


def memo_bombs():
    return {
        "long_binput_huge": b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b".",
        "put_text_huge": b"\x80\x02Np99999999999999\n.",
        "long_binget_huge": b"\x80\x02" + b"j" + struct.pack("<I", 0xFFFFFFFF) + b".",
    }


def nesting_bombs():
    return {
        "marks": b"\x80\x02" + b"(" * 300_000 + b"N.",
        "lists": b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",
        "tuples": b"\x80\x02N" + b"\x85" * 200_000 + b".",
        "dicts": b"\x80\x02}" + b"K\x01}" * 100_000 + b"s" * 100_000 + b".",
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["memo", "nesting"])
def test_bombs_are_reported_within_time_and_memory(tmp_path, kind):
    bombs = memo_bombs() if kind == "memo" else nesting_bombs()
    paths = []
    for name, data in bombs.items():
        p = tmp_path / f"{name}.pt"
        p.write_bytes(data)
        paths.append(p)
    # ~1 CPU-second when linear; an exponential walk of the shared structure never ends
    result = run_harness(paths, limit_bytes=1 << 30, cpu_seconds=30)
    assert result["events"] == []
    reported = {d["filename"] for d in result["diags"] if d["code"] == "CKPT101"}
    assert reported == {str(p) for p in paths}


def test_shared_structure_bomb_stays_fast(tmp_path):
    # 2**60 paths through 60 lists that each hold the previous one twice
    data = b"\x80\x02]q\x00"
    for i in range(1, 61):
        data += b"](h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"eq" + bytes([i]) + b"0"
    data += b"0h" + bytes([60]) + b"."
    p = tmp_path / "shared.pt"
    p.write_bytes(data)
    result = run_harness([p], limit_bytes=1 << 30, cpu_seconds=20)  # ~0.2 CPU-seconds
    assert result["events"] == [] and result["diags"] == []


def test_cli_json_for_a_bomb_has_no_traceback(tmp_path):
    p = tmp_path / "bomb.pt"
    p.write_bytes(memo_bombs()["long_binput_huge"])
    proc = subprocess.run([sys.executable, "-m", "ckptlint", "verify", str(p), "--output-format",
                           "json"], capture_output=True, text=True, env=cli_env(), timeout=HANG)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert [d["code"] for d in json.loads(proc.stdout)] == ["CKPT101", "CKPT109"]


def test_opcode_pass_alone_never_guesses_and_both_passes_are_reported():
    from ckptlint.reader.pickle_scan import opcode_globals, scan

    # "os" "system" POP "system" STACK_GLOBAL: the POP leaves pass 1 unsure, the VM resolves it
    data = b"\x80\x04" + sbu("os") + sbu("system") + b"0" + sbu("system") + b"\x93" + bu("x") + b"\x85R."
    assert opcode_globals(data) == ["<unresolved STACK_GLOBAL>"]
    assert scan(data).globals == ["os.system"]  # the VM followed the real stack
    # when the VM fails, pass 1's doubt stays in the report (fail closed)
    cut = data[:-3]
    with pytest.raises(Exception) as info:
        scan(cut)
    assert "<unresolved STACK_GLOBAL>" in info.value.globals and "os.system" in info.value.globals
    # split across frames, pass 1 alone still resolves it
    split = recipes("/nonexistent/marker")["split_across_frames"][0]
    assert opcode_globals(split) == ["os.system"]
