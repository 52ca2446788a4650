"""Benchmark `ckptlint verify` on a large torch.distributed.checkpoint folder.

Builds, in a temporary folder, the `.metadata` DCP would write for KEYS tensors sharded on
their first dimension over RANKS ranks (every tensor has RANKS chunks, FSDP-style), with
DCP's own classes, plus RANKS shard files made sparse at the sizes the metadata needs (so a
terabyte-sized checkpoint takes no disk) and a few real bytes items (`step`, an RNG state)
at the start of shard 0. Then, in fresh child processes of the same run (median of
repeats): `ckptlint verify FOLDER` end to end (wall time, peak RSS), and the reference: how
long DCP itself takes just to read that `.metadata` (`pickle.load`, which DCP's
FileSystemReader.read_metadata calls), timed inside a child that has torch imported.

    python benchmarks/bench_dcp.py [--keys 3000] [--ranks 64] [--repeats 3] [--mib-per-chunk 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

BUILD = textwrap.dedent('''
    import io, os, pickle, sys, torch
    from torch.distributed.checkpoint.metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata,
        MetadataIndex, TensorProperties, TensorStorageMetadata)
    from torch.distributed.checkpoint.filesystem import _StorageInfo

    folder, keys, ranks, chunk_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rows = max(1, chunk_bytes // (4096 * 2))  # bf16 rows of 4096 per chunk
    sdm, storage, planner = {}, {}, {}
    offsets = [0] * ranks
    items = {}
    for name, value in (("step", 1000), ("rng", torch.get_rng_state())):
        buf = io.BytesIO()
        torch.save(value, buf)
        items[name] = buf.getvalue()
        sdm[name] = BytesStorageMetadata()
        storage[MetadataIndex(name)] = _StorageInfo("__0_0.distcp", offsets[0], len(items[name]))
        planner[name] = (name,)
        offsets[0] += len(items[name])
    for k in range(keys):
        fqn = f"model.layers.{k // 9}.w{k % 9}.weight"
        chunks = []
        for r in range(ranks):
            off = torch.Size([r * rows, 0])
            chunks.append(ChunkStorageMetadata(offsets=off, sizes=torch.Size([rows, 4096])))
            storage[MetadataIndex(fqn, off, None)] = _StorageInfo(f"__{r}_0.distcp", offsets[r], rows * 4096 * 2)
            offsets[r] += rows * 4096 * 2
        sdm[fqn] = TensorStorageMetadata(TensorProperties(dtype=torch.bfloat16), torch.Size([ranks * rows, 4096]),
                                         chunks)
        planner[fqn] = ("model", fqn[len("model."):])
    meta = Metadata(state_dict_metadata=sdm, planner_data=planner, storage_data=storage)
    with open(os.path.join(folder, ".metadata"), "wb") as f:
        pickle.dump(meta, f)
    for r in range(ranks):
        with open(os.path.join(folder, f"__{r}_0.distcp"), "wb") as f:
            if r == 0:
                for data in items.values():
                    f.write(data)
            f.truncate(offsets[r])  # sparse: the tensor bytes take no disk
    print(sum(offsets), os.path.getsize(os.path.join(folder, ".metadata")))
''')

REFERENCE = textwrap.dedent('''
    import pickle, sys, time
    import torch.distributed.checkpoint.metadata  # noqa: F401 - as DCP has it imported
    start = time.perf_counter()
    with open(sys.argv[1], "rb") as f:
        pickle.load(f)
    print(time.perf_counter() - start)
''')


def peak_rss_mb(pid_status: str) -> float:
    for line in pid_status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_verify(folder: str) -> tuple:
    """(wall seconds, peak RSS MB, exit code) of one `ckptlint verify FOLDER`."""
    code = ("import runpy, sys, atexit\n"
            "atexit.register(lambda: sys.stderr.write(open('/proc/self/status').read()))\n"
            "sys.argv = ['ckptlint', 'verify', sys.argv[1], '--output-format', 'json']\n"
            "runpy.run_module('ckptlint', run_name='__main__')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode written and used, as after pip install
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    return wall, peak_rss_mb(proc.stderr), proc.returncode, proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=3000)
    p.add_argument("--ranks", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mib-per-chunk", type=float, default=5.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "ckpt")
        os.mkdir(folder)
        out = subprocess.run([sys.executable, "-c", BUILD, folder, str(args.keys), str(args.ranks),
                              str(int(args.mib_per_chunk * (1 << 20)))], capture_output=True, text=True, check=True)
        total, meta = (int(x) for x in out.stdout.split())
        chunks = args.keys * args.ranks
        print(f"DCP folder: {args.keys} keys x {args.ranks} ranks = {chunks} chunks, "
              f"{total / (1 << 40):.2f} TiB of (sparse) shards, .metadata {meta / 1e6:.1f} MB; "
              f"python {sys.version.split()[0]}, repeats {args.repeats}, medians; "
              f"load average {os.getloadavg()[0]:.1f}")
        run_verify(folder)  # warm-up: writes the bytecode
        ours, rss, codes = [], [], set()
        ref = []
        for _ in range(args.repeats):
            wall, peak, code, stdout = run_verify(folder)
            ours.append(wall)
            rss.append(peak)
            codes.add(code)
            ref.append(float(subprocess.run([sys.executable, "-c", REFERENCE, os.path.join(folder, ".metadata")],
                                            capture_output=True, text=True, check=True).stdout))
        verdict = "clean" if codes == {0} else f"exit {sorted(codes)}: {stdout[:300]}"
        mine, theirs = statistics.median(ours), statistics.median(ref)
        print()
        print("| measurement | wall time | peak RSS |")
        print("|---|---|---|")
        print(f"| `ckptlint verify FOLDER` end to end ({verdict}) | {mine:.2f} s | {statistics.median(rss):.0f} MB |")
        print(f"| DCP's own `pickle.load` of `.metadata` (reference, in-process) | {theirs:.2f} s | - |")
        print()
        print(f"verify / DCP's metadata read: {mine / theirs:.1f}x; per chunk: {mine / chunks * 1e6:.1f} us")
        print(f"targets: < 1 s: {'met' if mine < 1 else 'not met'}; < 100 MB: "
              f"{'met' if statistics.median(rss) < 100 else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
