"""`ckptlint verify URL`: checkpoints read where they live, by byte ranges, against real
servers the tests start on 127.0.0.1 (tests/runtime/servers.py): a small HTTP file server
with byte ranges (and the faults real ones show), and moto's S3 API server. For every format
the reader knows, the remote verdict is the local one, and the bytes fetched stay far below
the file's size."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.helpers import HANG
from .servers import RangeServer, moto_server, moto_url, upload
from ._util import cli_env

pytestmark = pytest.mark.slow  # servers and subprocesses

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")
torch = pytest.importorskip("torch")

# each file or folder of the tree below, with what makes it worth checking
CASES = [
    "zip.pt",  # torch.save: a clean state dict
    "legacy.pt",  # _use_new_zipfile_serialization=False
    "full.pt",  # a pickled nn.Module: CKPT101 + CKPT102
    "evil.pkl",  # a raw pickle that calls os.system: CKPT101
    "cut.pt",  # a truncated zip: CKPT109
    "model.safetensors",
    "sharded/model.safetensors.index.json",  # an HF index and its two shards
    "holes/model.safetensors.index.json",  # its second shard is missing
    "dcp",  # a DCP folder (dcp.save, one rank) with bytes items
    "ds",  # DeepSpeed's layout, rank 2 of 4 missing
    "acc",  # accelerate's layout, random_states_1.pkl missing
]


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _write_tree(root: pathlib.Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    torch.save({"model": lin.state_dict(), "step": 3}, root / "zip.pt")
    torch.save(lin.state_dict(), root / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(lin, root / "full.pt")
    import pickle

    (root / "evil.pkl").write_bytes(pickle.dumps({"a": Evil()}))
    data = (root / "zip.pt").read_bytes()
    (root / "cut.pt").write_bytes(data[: len(data) // 2])
    save_file({"weight": torch.zeros(3, 4)}, str(root / "model.safetensors"))
    for name, shards in (("sharded", 2), ("holes", 1)):
        folder = root / name
        folder.mkdir()
        weight_map = {}
        for i in range(2):
            shard = f"model-0000{i + 1}-of-00002.safetensors"
            weight_map[f"layer{i}.weight"] = shard
            if i < shards:
                save_file({f"layer{i}.weight": torch.ones(2, 2)}, str(folder / shard))
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    import torch.distributed.checkpoint as dcp

    dcp.save({"model": lin.state_dict(), "step": 7, "extra": {"name": "run1"}}, checkpoint_id=str(root / "dcp"))
    tag = root / "ds" / "global_step10"
    tag.mkdir(parents=True)
    (root / "ds" / "latest").write_text("global_step10")
    torch.save({"module": lin.state_dict(), "ds_version": "0.15.0"}, tag / "mp_rank_00_model_states.pt")
    for rank in (0, 1, 3):
        torch.save({"optimizer_state_dict": {"zero_stage": 2, "partition_count": [4],
                                             "single_partition_of_fp32_groups": [torch.zeros(2)]}},
                   tag / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
    (root / "acc").mkdir()
    torch.save(lin.state_dict(), root / "acc" / "pytorch_model.bin")
    for rank in (0, 2):
        torch.save({"python": 1, "torch": torch.get_rng_state()}, root / "acc" / f"random_states_{rank}.pkl")


def sparse_checkpoint(path: pathlib.Path, gib: float = 1.0) -> pathlib.Path:
    """A real torch.save of a `gib`-GiB state dict, its zero-filled tensor bytes left as holes
    (so it takes ~1 MB of disk): saved to memory-backed /dev/shm where there is one, then
    copied block by block, skipping zero blocks."""
    big = torch.empty(int(gib * (1 << 30)) // 4, dtype=torch.float32)  # untouched pages read as zeros
    state = {"big": big, "small": torch.ones(3), "step": 10}
    shm = pathlib.Path("/dev/shm")
    tmp = (shm if shm.is_dir() and os.access(shm, os.W_OK) else path.parent) / f"ckptlint-{os.getpid()}.pt"
    torch.save(state, tmp)
    zero = bytes(1 << 20)
    try:
        with open(tmp, "rb") as src, open(path, "wb") as dst:
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                if block == zero[:len(block)]:
                    dst.seek(len(block), 1)
                else:
                    dst.write(block)
            dst.truncate(dst.tell())
    finally:
        tmp.unlink()
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote-tree")
    _write_tree(root)
    return root


@pytest.fixture(scope="module")
def http(tree):
    server = RangeServer(tree).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(tree):
    pytest.importorskip("s3fs")
    server = moto_server()
    if server is None:
        pytest.skip("moto is not installed (the test extra has it)")
    endpoint = moto_url(server)
    upload(endpoint, "ckpts", tree)
    env = dict(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield {"url": "s3://ckpts", "endpoint": endpoint, "env": env}
    server.stop()


def verify(*paths, **kw):
    from ckptlint.verify import verify as run

    return run([], [str(p) for p in paths], root=pathlib.Path.cwd(), torch_version=None, safe_globals=[], **kw)


def seen(diags, base: str):
    """What a user sees of each finding, its file named relative to where the tree lives."""
    out = []
    for d in diags:
        name = d.filename
        assert name.startswith(base), (name, base)
        out.append((name[len(base):].lstrip("/"), d.code, d.message, d.help, d.key, d.severity))
    return sorted(out)


def base_url(server_or_bucket) -> str:
    return server_or_bucket.url if isinstance(server_or_bucket, RangeServer) else server_or_bucket["url"]


@pytest.mark.parametrize("store", ["http", "s3"])
@pytest.mark.parametrize("case", CASES)
def test_each_format_gives_the_local_verdict(request, tree, store, case):
    remote = base_url(request.getfixturevalue(store))
    url = f"{remote}/{case}" + ("/" if store == "http" and (tree / case).is_dir() else "")
    local, _ = verify(tree / case)
    got, notes = verify(url, verbose=True)
    assert seen(got, remote) == seen(local, str(tree))
    assert local or case in ("zip.pt", "legacy.pt", "model.safetensors", "sharded/model.safetensors.index.json",
                             "dcp")  # the test sees findings where the files hold some
    fetched = [n for n in notes if " fetched " in n]
    assert fetched and all(n.startswith(remote) for n in fetched)


def test_the_cases_cover_every_verdict_kind(tree):
    codes = {d.code for case in CASES for d in verify(tree / case)[0]}
    assert {"CKPT101", "CKPT102", "CKPT109"} <= codes


@pytest.mark.parametrize("store", ["http", "s3"])
def test_a_whole_folder_by_url_is_the_local_folder(request, tree, store):
    remote = base_url(request.getfixturevalue(store))
    local, local_notes = verify(tree)
    got, notes = verify(remote + ("/" if store == "http" else ""))
    assert seen(got, remote) == seen(local, str(tree))
    assert [n for n in notes if n.startswith("skipped")] == [n for n in local_notes if n.startswith("skipped")]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    sparse_checkpoint(folder / "big.pt")
    return folder


@pytest.mark.parametrize("store", ["http", "s3"])
def test_a_1_gib_checkpoint_costs_under_1_percent_of_its_bytes(request, big, store):
    from ckptlint.reader import remote

    size = (big / "big.pt").stat().st_size
    assert size >= 1 << 30
    if store == "http":
        server = RangeServer(big).start()
        url = f"{server.url}/big.pt"
    else:
        s3 = request.getfixturevalue("s3")
        upload(s3["endpoint"], "big", big)
        url, server = "s3://big/big.pt", None
    from ckptlint.reader import source

    old_timeout, source.SETTINGS.timeout = source.SETTINGS.timeout, HANG  # moto serves a 1 GiB key slowly under load
    try:
        local, _ = verify(big / "big.pt")
        got, notes = verify(url, verbose=True)
        fetched = remote.FETCHED[url].bytes
        if server is not None:
            assert server.sent["/big.pt"] == fetched  # the server's own count agrees
    finally:
        source.SETTINGS.timeout = old_timeout
        if server is not None:
            server.stop()
    assert seen(got, url) == seen(local, str(big / "big.pt"))
    assert 0 < fetched < size // 100, notes
    assert notes == [remote.describe(url, remote.FETCHED[url])]


# -- faults: one finding naming the URL each, and the run goes on -------------------------


@pytest.fixture
def faulty(tree, tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    for name in ("zip.pt", "full.pt"):
        shutil.copy(tree / name, root / name)
    for name in ("denied.pt", "gone.pt", "noranges.pt", "stalled.pt"):
        shutil.copy(tree / "full.pt", root / name)
    with open(root / "noranges.pt", "r+b") as f:  # 64 MiB: more than socket buffers hold
        f.truncate(64 << 20)
    torch.save(torch.nn.Linear(256, 256), root / "moving.pt")  # 257 KiB: read in many ranges
    server = RangeServer(root).start()
    yield server
    server.stop()


def _one_finding(diags, url):
    mine = [d for d in diags if d.filename == url]
    assert len(mine) == 1, [(d.filename, d.message) for d in diags]
    d = mine[0]
    assert d.code == "CKPT109" and len(d.message) <= 100
    return d


def test_403_404_and_ignored_ranges_each_give_one_finding_and_the_run_goes_on(faulty):
    faulty.faults.by_path.update({"/denied.pt": "403", "/gone.pt": "404", "/noranges.pt": "ignore-ranges"})
    names = ["denied.pt", "gone.pt", "noranges.pt", "full.pt"]
    diags, _ = verify(*(f"{faulty.url}/{n}" for n in names))
    denied = _one_finding(diags, f"{faulty.url}/denied.pt")
    assert "access denied (HTTP 403)" in denied.message and "credentials" in denied.help
    assert _one_finding(diags, f"{faulty.url}/gone.pt").message == "unreadable checkpoint: file does not exist"
    ranges = _one_finding(diags, f"{faulty.url}/noranges.pt")
    assert "ignores byte ranges" in ranges.message and "not downloaded" in ranges.help
    size = os.path.getsize(faulty.root / "noranges.pt")
    assert faulty.sent["/noranges.pt"] < size // 4  # the whole file was refused, not read
    # the healthy file of the same run has its own verdict
    assert {d.code for d in diags if d.filename.endswith("/full.pt")} == {"CKPT101", "CKPT102"}


def test_a_stalled_server_is_a_timeout_finding(faulty):
    from ckptlint.reader import source

    faulty.faults.by_path["/stalled.pt"] = "stall"
    old = source.SETTINGS.timeout
    source.SETTINGS.timeout = 0.5
    try:
        diags, _ = verify(f"{faulty.url}/stalled.pt", f"{faulty.url}/zip.pt")
    finally:
        source.SETTINGS.timeout = old
    d = _one_finding(diags, f"{faulty.url}/stalled.pt")
    assert "timed out (no answer within 0.5 s" in d.message and "--timeout" in d.help
    assert not [x for x in diags if x.filename.endswith("/zip.pt")]


@pytest.mark.parametrize("if_match", [True, False])
def test_a_file_that_changes_between_reads_is_reported(faulty, if_match):
    """The file's bytes change after its first range answer: a server that honours If-Match
    refuses the next range (412); one that ignores it sends another ETag and size."""
    faulty.faults.by_path["/moving.pt"] = "change-after-2"  # the HEAD, then one range
    faulty.faults.honour_if_match = if_match
    from ckptlint.reader import remote

    old = remote.MIN_READAHEAD
    remote.MIN_READAHEAD = 64  # small reads, so the file takes several ranges
    try:
        diags, _ = verify(f"{faulty.url}/moving.pt", f"{faulty.url}/full.pt")
    finally:
        remote.MIN_READAHEAD = old
    d = _one_finding(diags, f"{faulty.url}/moving.pt")
    assert d.message.startswith("unreadable checkpoint: the file changed while it was read")
    assert ("HTTP 412" in d.help) is if_match
    assert {x.code for x in diags if x.filename.endswith("/full.pt")} == {"CKPT101", "CKPT102"}


def test_a_missing_key_and_bucket_on_s3(s3):
    diags, _ = verify("s3://ckpts/nope.pt", "s3://no-such-bucket/x.pt", "s3://ckpts/full.pt")
    for url in ("s3://ckpts/nope.pt", "s3://no-such-bucket/x.pt"):
        assert _one_finding(diags, url).message == "unreadable checkpoint: file does not exist"
    assert {d.code for d in diags if d.filename == "s3://ckpts/full.pt"} == {"CKPT101", "CKPT102"}


def test_the_fetch_budget_stops_a_file_and_says_so(faulty):
    from ckptlint.reader import source

    old = source.SETTINGS.max_fetch
    source.SETTINGS.max_fetch = 100
    try:
        diags, _ = verify(f"{faulty.url}/full.pt")
    finally:
        source.SETTINGS.max_fetch = old
    d = _one_finding(diags, f"{faulty.url}/full.pt")
    assert "--max-fetch" in d.help


# -- the command line ----------------------------------------------------------------------


def test_cli_names_the_url_and_verbose_says_what_was_fetched(http, tmp_path):
    url = f"{http.url}/full.pt"
    proc = subprocess.run([sys.executable, "-m", "ckptlint", "verify", "--verbose", url], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=HANG)
    assert proc.returncode == 1, proc.stderr
    assert f"{url}: CKPT101 " in proc.stdout
    assert f"{url}: fetched " in proc.stderr and "request" in proc.stderr
    quiet = subprocess.run([sys.executable, "-m", "ckptlint", "verify", "--output-format", "json", url], cwd=tmp_path,
                           env=cli_env(), capture_output=True, text=True, timeout=HANG)
    assert {d["filename"] for d in json.loads(quiet.stdout)} == {url}
    assert "fetched" not in quiet.stderr


def test_configured_entries_may_be_urls_with_a_model(http, tmp_path):
    (tmp_path / "models.py").write_text("import torch\n\ndef build(n=3):\n    return torch.nn.Linear(4, n)\n")
    (tmp_path / "pyproject.toml").write_text(
        "[[tool.ckptlint.checkpoints]]\n"
        f'path = "{http.url}/zip.pt"\nmodel = "models:build"\nkwargs = {{ n = 5 }}\n')
    proc = subprocess.run([sys.executable, "-m", "ckptlint", "verify", "--output-format", "json"], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=HANG)
    diags = json.loads(proc.stdout)
    assert {(d["code"], d["filename"]) for d in diags} == {("CKPT105", f"{http.url}/zip.pt")}, proc.stderr


def test_without_fsspec_a_url_says_which_extra_to_install(tmp_path):
    code = ("import sys; sys.modules['fsspec'] = None\n"
            "from ckptlint.verify import verify\n"
            "d, _ = verify([], ['s3://b/x.pt'], root='.', torch_version=None, safe_globals=[])\n"
            "print(d[0].code, d[0].help)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG, cwd=tmp_path,
                          env=cli_env())
    assert proc.stdout.startswith("CKPT109 ") and "ckptlint[remote]" in proc.stdout, proc.stderr


def test_a_192k_chunk_dcp_folder_fetches_its_metadata_and_under_1_mb_of_shards(tmp_path):
    """benchmarks/bench_dcp.py's folder: 3000 keys x 64 ranks, sparse shards of ~0.9 TiB."""
    import importlib.util

    from ckptlint.reader import remote
    from tests.helpers import ROOT

    spec = importlib.util.spec_from_file_location("bench_dcp", ROOT / "benchmarks" / "bench_dcp.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    BUILD = bench.BUILD

    folder = tmp_path / "ckpt"
    folder.mkdir()
    subprocess.run([sys.executable, "-c", BUILD, str(folder), "3000", "64", str(5 << 20)], check=True,
                   capture_output=True, timeout=HANG)
    server = RangeServer(tmp_path).start()
    try:
        local, _ = verify(folder)
        got, _ = verify(f"{server.url}/ckpt/", verbose=True)
        fetched = dict(remote.FETCHED)
    finally:
        server.stop()
    assert seen(got, server.url) == seen(local, str(tmp_path)) == []
    meta = fetched.pop(f"{server.url}/ckpt/.metadata")
    assert meta.bytes == (folder / ".metadata").stat().st_size  # the index, once
    assert len(fetched) == 64 and sum(f.size for f in fetched.values()) > 1 << 39
    assert 0 < sum(f.bytes for f in fetched.values()) < 1 << 20  # the bytes items only


# -- hf:// ---------------------------------------------------------------------------------


def test_hf_urls_through_a_local_hub_endpoint(tree, tmp_path):
    """huggingface_hub's HfFileSystem, pointed at the test server by HF_ENDPOINT (the few Hub
    endpoints it reads with: repository info, tree listings, `resolve` with ranges): each
    file and folder gets its local verdict, read at the commit `main` resolves to."""
    pytest.importorskip("huggingface_hub")
    from .servers import HUB_SHA

    shutil.copytree(tree, tmp_path / "org" / "model")
    server = RangeServer(tmp_path).start()
    urls = [f"hf://org/model/{case}" for case in CASES] + ["hf://org/model/nope.pt", "hf://org/gone/x.pt"]
    env = dict(cli_env(), HF_ENDPOINT=server.url, HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "ckptlint", "verify", "--output-format", "json", *urls],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG)
    finally:
        server.stop()
    got = sorted((d["filename"][len("hf://org/model/"):] if d["filename"].startswith("hf://org/model/")
                  else d["filename"], d["code"], d["message"]) for d in json.loads(proc.stdout))
    local, _ = verify(*(tree / case for case in CASES), tree / "nope.pt")
    want = sorted((os.path.relpath(d.filename, tree), d.code, d.message) for d in local)
    want.append(("hf://org/gone/x.pt", "CKPT109", "unreadable checkpoint: file does not exist"))
    assert got == sorted(want), proc.stderr
    # the files were read at the commit, not at `main`
    reads = [p for p in server.paths if "/resolve/" in p]
    assert reads and all(p.startswith(f"/org/model/resolve/{HUB_SHA}/") for p in reads), reads[:3]
