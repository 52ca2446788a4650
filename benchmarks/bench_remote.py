"""Benchmark `ckptlint verify URL` against `picklescan --url URL` on the same local server.

Builds a real `torch.save` checkpoint of --gib GiB (its zero tensor bytes left as holes, so
it takes ~1 MB of disk), serves it over HTTPS from 127.0.0.1 (tests/runtime/servers.py's
range server, with a self-signed certificate both clients trust through SSL_CERT_FILE;
picklescan only speaks HTTPS), then runs, in fresh processes of the same run (median of
--repeats): `ckptlint verify --output-format json URL` and `picklescan --url URL` (from a
venv that has picklescan: --peers-python, as benchmarks/bench_verify_peers.py makes one).
Bytes are counted by the server, per tool. Prints a Markdown table and the ratios.

    python benchmarks/bench_remote.py [--gib 1] [--repeats 3] [--peers-python PY]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runtime.servers import RangeServer, self_signed  # noqa: E402

PEERS_VENV = REPO / "benchmarks" / ".venv-peers"

BUILD = """
import os, sys, torch
path, gib = sys.argv[1], float(sys.argv[2])
big = torch.empty(int(gib * (1 << 30)) // 4, dtype=torch.float32)  # untouched pages read as zeros
torch.save({"big": big, "small": torch.ones(3), "step": 10}, path)
"""


def build(folder: pathlib.Path, gib: float) -> pathlib.Path:
    """torch.save to memory-backed /dev/shm (or the folder), then a sparse copy."""
    shm = pathlib.Path("/dev/shm")
    tmp = (shm if shm.is_dir() and os.access(shm, os.W_OK) else folder) / f"bench-{os.getpid()}.pt"
    subprocess.run([sys.executable, "-c", BUILD, str(tmp), str(gib)], check=True)
    out = folder / "model.pt"
    zero = bytes(1 << 20)
    try:
        with open(tmp, "rb") as src, open(out, "wb") as dst:
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
    return out


def timed(cmd, env, server, path) -> tuple:
    """(wall seconds, bytes the server sent for the file, exit code, output tail)."""
    before = server.sent[path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    return wall, server.sent[path] - before, proc.returncode, (proc.stdout + proc.stderr).strip()[-300:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peers-python", default=str(PEERS_VENV / "bin" / "python"),
                    help="an interpreter with picklescan installed (default: %(default)s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        tls = self_signed(folder)
        if tls is None:
            print("needs the openssl command (for the server's certificate)", file=sys.stderr)
            return 1
        served = folder / "served"
        served.mkdir()
        ckpt = build(served, args.gib)
        size = ckpt.stat().st_size
        server = RangeServer(served, tls=tls).start()
        url = f"{server.url}/model.pt"
        env = dict(os.environ, SSL_CERT_FILE=str(tls[0]), PYTHONPATH=str(REPO))
        tools = {"ckptlint verify": [sys.executable, "-m", "ckptlint", "verify", "--output-format", "json", url]}
        if pathlib.Path(args.peers_python).exists():
            tools["picklescan --url"] = [args.peers_python, "-m", "picklescan", "--url", url]
        else:
            print(f"picklescan skipped: no {args.peers_python} (benchmarks/bench_verify_peers.py --install-peers)",
                  file=sys.stderr)
        rows = {}
        try:
            for name, cmd in tools.items():
                timed(cmd, env, server, "/model.pt")  # warm-up: bytecode, page cache
                runs = [timed(cmd, env, server, "/model.pt") for _ in range(args.repeats)]
                rows[name] = runs
        finally:
            server.stop()
    print(f"checkpoint: torch.save state dict, {size / (1 << 30):.2f} GiB ({size} bytes), served over HTTPS "
          f"from 127.0.0.1; python {sys.version.split()[0]}; medians of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| tool | wall time | bytes fetched | share of the file | exit | output (tail) |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        wall = statistics.median(r[0] for r in runs)
        fetched = statistics.median(r[1] for r in runs)
        tail = runs[-1][3].replace("\n", " ").replace("|", "/")[:90]
        print(f"| `{name}` | {wall:.2f} s | {fetched:,.0f} | {100 * fetched / size:.4f}% | "
              f"{sorted({r[2] for r in runs})} | {tail or '-'} |")
    if len(rows) == 2:
        (ours, theirs) = (rows["ckptlint verify"], rows["picklescan --url"])
        t = statistics.median(r[0] for r in theirs) / statistics.median(r[0] for r in ours)
        b = statistics.median(r[1] for r in theirs) / max(statistics.median(r[1] for r in ours), 1)
        print(f"\npicklescan / ckptlint: {t:.1f}x the time, {b:,.0f}x the bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
