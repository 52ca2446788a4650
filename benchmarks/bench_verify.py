"""Benchmark `ckptlint verify` against the naive torch.load + load_state_dict path.

Creates a >= 1 GB checkpoint in a temporary folder and measures, in fresh subprocesses of
the same run (median of several repeats):

- bare `python -c pass` and `python -c "import torch"` (the memory baselines),
- the reader alone (`read_checkpoint`, timed inside the child),
- `verify FILE` end to end (no model, no torch import),
- `verify` with a model (project config, meta-device comparison),
- the naive path: build the model, `torch.load(weights_only=True)`, `load_state_dict`.

Peak RSS is each child's own `VmHWM` from /proc (written at exit; exec resets it, so unlike
ru_maxrss it does not include the parent's memory at fork). Memory targets are counted above
the interpreter (reader) or above a bare `import torch` (model paths), as in issue 8. The
checkpoint is written by a separate child so the measuring parent stays small.

    python benchmarks/bench_verify.py [--gib 1.0] [--repeats 5]
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

MODELS = textwrap.dedent('''
    import torch.nn as nn

    WIDTH = {width}
    LAYERS = {layers}


    def build():
        layers = []
        for _ in range(LAYERS):
            layers += [nn.Linear(WIDTH, WIDTH), nn.LayerNorm(WIDTH)]
        return nn.Sequential(*layers)
''')


MAKE = (
    "import sys, torch\n"
    "sys.path.insert(0, '.')\n"
    "import bench_models\n"
    "with torch.device('meta'):\n"
    "    model = bench_models.build()\n"
    "model.to_empty(device='cpu')\n"
    "for p in model.parameters():\n"
    "    p.data.uniform_(-0.01, 0.01)\n"
    "torch.save(model.state_dict(), 'big.pt')\n"
)


def make_checkpoint(folder: pathlib.Path, gib: float) -> pathlib.Path:
    width = 2048
    per_layer = (width * width + 3 * width) * 4
    layers = max(1, int(-(-gib * (1 << 30) // per_layer)))
    (folder / "bench_models.py").write_text(MODELS.format(width=width, layers=layers))
    (folder / "pyproject.toml").write_text(textwrap.dedent('''
        [[tool.ckptlint.checkpoints]]
        path = "big.pt"
        model = "bench_models:build"
    '''))
    subprocess.run([sys.executable, "-c", MAKE], cwd=str(folder), check=True)
    return folder / "big.pt"


# Every child runs its code after this prelude, which reports the child's own peak RSS.
PRELUDE = (
    "import atexit, sys\n"
    "def _hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('VMHWM=' + line.split()[1] + '\\n')\n"
    "atexit.register(_hwm)\n"
)


def cli(*args) -> str:
    return (f"import runpy, sys\nsys.argv = ['ckptlint', *{list(args)!r}]\n"
            "runpy.run_module('ckptlint.cli.verify', run_name='__main__')\n")


def run(code: str, cwd) -> tuple:
    """(wall seconds, peak RSS bytes, stdout) of one child process. Bytecode is written and
    used, as after `pip install` (some sandboxes set PYTHONDONTWRITEBYTECODE, which makes
    every child compile every module: ~40 ms more here); `measure` warms it up first."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(REPO)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=str(cwd), env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"child failed with {proc.returncode}: {proc.stderr[-2000:]}")
    hwm = [line for line in proc.stderr.splitlines() if line.startswith("VMHWM=")]
    return wall, int(hwm[-1].split("=")[1]) * 1024, proc.stdout


def measure(code, cwd, repeats):
    run(code, cwd)  # writes the bytecode of what the child imports
    walls, rss, inner = [], [], []
    for _ in range(repeats):
        wall, peak, out = run(code, cwd)
        walls.append(wall)
        rss.append(peak)
        if out.strip().startswith("inner="):
            inner.append(float(out.strip().split("=", 1)[1]))
    return {"wall": statistics.median(walls), "rss": statistics.median(rss),
            "inner": statistics.median(inner) if inner else None}


READER = (
    "import sys, time\n"
    "from ckptlint.reader.reader import read_checkpoint\n"
    "t = time.perf_counter(); ck = read_checkpoint('big.pt'); t = time.perf_counter() - t\n"
    "assert ck.readable and 'torch' not in sys.modules\n"
    "print(f'inner={t}')\n"
)

NAIVE = (
    "import sys, time, torch\n"
    "sys.path.insert(0, '.')\n"
    "t = time.perf_counter()\n"
    "from bench_models import build\n"
    "m = build(); sd = torch.load('big.pt', weights_only=True); m.load_state_dict(sd)\n"
    "print(f'inner={time.perf_counter() - t}')\n"
)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    load = [" ".join(f"{x:.2f}" for x in os.getloadavg())]  # other jobs on the machine inflate wall times
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        path = make_checkpoint(folder, args.gib)
        size = path.stat().st_size
        import zipfile

        with zipfile.ZipFile(path) as z:
            tensors = sum("/data/" in n and "serialization_id" not in n for n in z.namelist())
        r = args.repeats
        heavy = max(3, r // 2)
        res = {
            "python": measure("pass", folder, r),
            "torch": measure("import torch", folder, r),
            "reader": measure(READER, folder, r),
            "verify_file": measure(cli("verify", str(path)), folder, r),
            "verify_model": measure(cli("verify"), folder, r),
            "naive": measure(NAIVE, folder, heavy),
        }
    load.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
    mb = 1 << 20
    base_py, base_torch = res["python"]["rss"], res["torch"]["rss"]
    reader_mem = (res["reader"]["rss"] - base_py) / mb
    model_mem = (res["verify_model"]["rss"] - base_torch) / mb
    naive_mem = (res["naive"]["rss"] - base_torch) / mb
    print(f"checkpoint: {size / (1 << 30):.2f} GiB ({size} bytes, {tensors} tensors), python {sys.version.split()[0]}, "
          f"repeats {r} (naive {heavy}), medians, load average at start / end {load[0]} / {load[1]}\n")
    print("| measurement | wall time | peak RSS | counted | target | ok |")
    print("|---|---|---|---|---|---|")
    print(f"| bare `python -c pass` | {res['python']['wall'] * 1000:.0f} ms | {base_py / mb:.1f} MB | - | - | - |")
    print(f"| bare `python -c 'import torch'` | {res['torch']['wall'] * 1000:.0f} ms | {base_torch / mb:.1f} MB "
          "| - | - | - |")
    t = res["reader"]["inner"] * 1000
    print(f"| reader alone (in-process time) | {t:.1f} ms | {res['reader']['rss'] / mb:.1f} MB | "
          f"+{reader_mem:.1f} MB above python | < 50 ms, < 20 MB | {'yes' if t < 50 and reader_mem < 20 else 'NO'} |")
    w, m = res["verify_file"]["wall"], res["verify_file"]["rss"] / mb
    print(f"| `verify FILE` end to end | {w * 1000:.0f} ms | {m:.1f} MB | total | < 0.1 s, < 30 MB (issue 12) | "
          f"{'yes' if w < 0.1 and m < 30 else 'NO'} |")
    w = res["verify_model"]["wall"]
    print(f"| `verify` with model end to end | {w * 1000:.0f} ms | {res['verify_model']['rss'] / mb:.1f} MB | "
          f"+{model_mem:.1f} MB above torch | >= 20x less than naive | "
          f"{'yes' if naive_mem >= 20 * max(model_mem, 0.1) else 'NO'} |")
    w = res["naive"]["wall"]
    print(f"| naive `torch.load(weights_only=True)` + `load_state_dict` | {w * 1000:.0f} ms "
          f"(load {res['naive']['inner'] * 1000:.0f} ms) | {res['naive']['rss'] / mb:.1f} MB | "
          f"+{naive_mem:.1f} MB above torch | - | - |")
    ratio = naive_mem / model_mem if model_mem > 0 else float("inf")
    print(f"\nmemory ratio naive / verify-with-model (above torch): {ratio:.1f}x")
    print(f"time ratio naive / verify-with-model: {res['naive']['wall'] / res['verify_model']['wall']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
