#!/usr/bin/env python3
"""Static-phase benchmark: ckptlint cold and warm against the read+prefilter floor, TorchFix,
bandit (B614) and ruff, on pinned timm and transformers sdists.

    python benchmarks/bench_static.py [--reps 3] [--corpus timm,transformers] [--write]

Every command runs in a fresh process, interleaved (one of each per round, the order
rotating), `--reps` rounds; the table shows medians of wall time. Peak RSS is per command
(os.wait4, which includes the worker processes a command waited for). With --write the
table goes to benchmarks/RESULTS-static.md.

The sdists are downloaded with pip into benchmarks/.corpora/ (gitignored) and unpacked
outside any git repository, since ckptlint and ruff skip git-ignored files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPORA = HERE / ".corpora"
PINNED = {"timm": "1.0.22", "transformers": "4.57.1"}
# TorchFix takes minutes on all of transformers' trigger files: it runs on a fixed sample
# there (say so in the table); on timm it runs on every trigger file.
TORCHFIX_SAMPLE = {"transformers": 40}

FLOOR = r"""
import json, os, re, sys
triggers = json.loads(sys.argv[2])
patterns = [re.compile(p) for p in json.loads(sys.argv[3])]
kept = 0
for d, dirs, files in os.walk(sys.argv[1]):
    for f in files:
        if f.endswith((".py", ".pyi")):
            with open(os.path.join(d, f), "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            if any(t in text for t in triggers) or any(p.search(text) for p in patterns):
                kept += 1
print(kept)
"""


def python() -> str:
    return sys.executable


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise SystemExit(f"bench: {name} not found (pip install {name})")
    return found


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    # as installed: bytecode cached (outside the source tree)
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "ckptlint-bench-pycache")
    e.pop("CKPTLINT_CACHE_DIR", None)
    return e


def fetch(name: str, work: Path) -> Path:
    version = PINNED[name]
    CORPORA.mkdir(parents=True, exist_ok=True)
    target = work / f"{name}-{version}"
    unpacked = CORPORA / f"{name}-{version}"  # eval_corpus.py's copy (sdist, else wheel)
    sdist = next(iter(CORPORA.glob(f"{name}-{version}.tar.gz")), None)
    if sdist is None and unpacked.is_dir():
        if not target.exists():  # copied out: under benchmarks/, .corpora is git-ignored
            shutil.copytree(unpacked.resolve(), target)
        return target
    if sdist is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"{name}=={version}", "-d", str(CORPORA)], check=True)
        sdist = next(CORPORA.glob(f"{name}-{version}.tar.gz"))
    if not target.exists():
        with tarfile.open(sdist) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(work, **kwargs)
    return target


def triggers() -> list:
    sys.path.insert(0, str(ROOT))
    from ckptlint.rules import all_rules

    rules = [r for r in all_rules().values() if r.phase == "static" and r.default_enabled]
    return (sorted({t for r in rules for t in r.text_triggers}),
            sorted({p.pattern for r in rules for p in r.text_patterns}))


def py_files(root: Path) -> list:
    return sorted(p for p in root.rglob("*.py"))


def run(cmd, cwd=None) -> dict:
    """Wall time, CPU time and peak RSS (MB) of one command and what it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": rss_mb, "rc": proc.returncode}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def bench_corpus(name: str, work: Path, reps: int, trig: list, skip: set) -> dict:
    root = fetch(name, work)
    files = py_files(root)
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    subs, pats = trig
    regexes = [re.compile(p) for p in pats]

    def triggered(text: str) -> bool:
        return any(t in text for t in subs) or any(r.search(text) for r in regexes)

    kept = [p for p in files if triggered(p.read_text("utf-8", "replace"))]
    tf_files = kept
    tf_note = f"all {len(kept)} trigger files"
    if name in TORCHFIX_SAMPLE and len(kept) > TORCHFIX_SAMPLE[name]:
        rnd = random.Random(0)
        tf_files = sorted(rnd.sample(kept, TORCHFIX_SAMPLE[name]))
        tf_note = f"a fixed sample of {len(tf_files)} of the {len(kept)} trigger files"
    caches = Path(tempfile.mkdtemp(prefix=f"ckptlint-cache-{name}-"))
    warm_dir = caches / "warm"
    # run where a user runs it, in the project (its config is the one read, not this checkout's)
    ck = [python(), "-m", "ckptlint", "check", ".", "--output-format", "json", "--exit-zero"]
    # warm the warm cache, and record the findings once
    proc = subprocess.run(ck + ["--cache-dir", str(warm_dir)], env=env(), capture_output=True, text=True, cwd=root)
    findings = json.loads(proc.stdout)
    commands = {
        "floor": lambda i: [python(), "-c", FLOOR, str(root), json.dumps(subs), json.dumps(pats)],
        "ckptlint cold": lambda i: ck + ["--cache-dir", str(caches / f"cold{i}")],
        "ckptlint warm": lambda i: ck + ["--cache-dir", str(warm_dir)],
        "ruff": lambda i: [tool("ruff"), "check", "--no-cache", "--exit-zero", "-q", str(root)],
        "bandit -t B614": lambda i: [tool("bandit"), "-q", "-r", "-t", "B614", "-f", "json", str(root)],
        "torchfix": lambda i: [tool("torchfix"), *map(str, tf_files)],
    }
    commands = {k: v for k, v in commands.items() if k.split()[0] not in skip}
    cwds = {"ckptlint cold": root, "ckptlint warm": root}
    results = {k: [] for k in commands}
    names = list(commands)
    for i in range(reps):
        order = names[i % len(names):] + names[:i % len(names)]
        for k in order:
            r = run(commands[k](i), cwd=cwds.get(k))
            results[k].append(r)
            print(f"  {name} round {i + 1}: {k:15s} {r['wall']:8.2f} s  {r['rss']:6.0f} MB", file=sys.stderr)
    shutil.rmtree(caches, ignore_errors=True)
    return {
        "name": name, "version": PINNED[name], "files": len(files), "lines": lines, "kept": len(kept),
        "findings": len(findings), "finding_files": len({d["filename"] for d in findings}),
        "torchfix_note": tf_note, "torchfix_files": len(tf_files),
        "wall": {k: median([r["wall"] for r in v]) for k, v in results.items()},
        "cpu": {k: median([r["cpu"] for r in v]) for k, v in results.items()},
        "rss": {k: max(r["rss"] for r in v) for k, v in results.items()},
    }


def bench_startup(reps: int, work: Path) -> dict:
    plain = work / "no_triggers.py"
    plain.write_text("def add(a, b):\n    return a + b\n")
    cmds = {
        "python -c pass": [python(), "-c", "pass"],
        "ckptlint check (1 file, no trigger)": [python(), "-m", "ckptlint", "check", str(plain), "--no-cache", "-q"],
    }
    for c in cmds.values():  # compile bytecode once
        run(c, cwd=work)
    res = {k: [] for k in cmds}
    for _ in range(max(reps, 10)):
        for k, c in cmds.items():
            res[k].append(run(c, cwd=work))
    return {k: {"wall": median([r["wall"] for r in v]), "cpu": median([r["cpu"] for r in v])} for k, v in res.items()}


def version_of(cmd) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env()).stdout.strip()
    except OSError:
        return "?"
    return out.splitlines()[0] if out else "?"


def tool_version(name: str, prefix: str = "") -> str:
    """`NAME VERSION`, or that it is not installed (a run with --skip NAME needs none)."""
    try:
        return prefix + version_of([tool(name), "--version"])
    except SystemExit:
        return f"{name} (not installed)"


def table(corpora: list, startup: dict, reps: int) -> str:
    out = []
    w = out.append
    w("# Static-phase benchmark\n")
    w(f"Produced by `python benchmarks/bench_static.py --write` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
      f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {reps} interleaved rounds, medians of wall "
      "time (peak RSS: the largest over the rounds, worker processes included). The machine is shared, "
      "so timings are noisy; ratios are taken within one run.\n")
    w(f"Tools: {version_of([python(), '-m', 'ckptlint', '--version'])}, {tool_version('ruff')}, "
      f"{tool_version('bandit')}, {tool_version('torchfix', 'torchfix ')}.\n")
    for c in corpora:
        wall, rss = c["wall"], c["rss"]
        w(f"## {c['name']} {c['version']} ({c['files']} files, {c['lines']:,} lines; "
          f"{c['kept']} files pass the text prefilter; ckptlint reports {c['findings']} findings in "
          f"{c['finding_files']} files)\n")
        w("| command | median wall (s) | median CPU (s) | peak RSS (MB) |")
        w("|---|---:|---:|---:|")
        labels = {
            "floor": "floor: read every .py + text prefilter",
            "ckptlint cold": "ckptlint, cold (empty cache)",
            "ckptlint warm": "ckptlint, warm (nothing changed)",
            "ruff": "ruff check (default rules, --no-cache)",
            "bandit -t B614": "bandit -t B614 (whole tree)",
            "torchfix": f"torchfix on {c['torchfix_note']}",
        }
        for k in wall:
            w(f"| {labels[k]} | {wall[k]:.2f} | {c['cpu'][k]:.2f} | {rss[k]:.0f} |")
        w("")
        w("| target | value | met |")
        w("|---|---:|:---:|")
        checks = []
        if "torchfix" in wall:
            ratio = wall["torchfix"] / wall["ckptlint cold"]
            note = ""
            if c["torchfix_files"] < c["kept"]:
                # per file, extrapolated to every trigger file
                ratio = wall["torchfix"] * c["kept"] / c["torchfix_files"] / wall["ckptlint cold"]
                note = " (TorchFix extrapolated from its sample to all trigger files)"
            checks.append((f"TorchFix (trigger files) / ckptlint cold (whole tree) >= 10{note}", f"{ratio:.1f}x", ratio >= 10))
        if c["name"] == "timm":
            r = wall["ckptlint cold"] / wall["floor"]
            checks.append(("ckptlint cold / floor <= 40", f"{r:.1f}x", r <= 40))
        if c["name"] == "transformers" and "ruff" in wall:
            r = wall["ckptlint cold"] / wall["ruff"]
            checks.append(("ckptlint cold / ruff <= 3 (aim)", f"{r:.1f}x", r <= 3))
        r = wall["ckptlint warm"] / wall["floor"]
        checks.append(("ckptlint warm / floor <= 1.5", f"{r:.2f}x", r <= 1.5))
        # CPU time too: on a shared machine, wall time also counts waiting for a core
        r = c["cpu"]["ckptlint warm"] / c["cpu"]["floor"]
        checks.append(("ckptlint warm / floor <= 1.5 (CPU time)", f"{r:.2f}x", r <= 1.5))
        peak = max(rss["ckptlint cold"], rss["ckptlint warm"])
        checks.append(("peak RSS of ckptlint < 300 MB", f"{peak:.0f} MB", peak < 300))
        for label, value, ok in checks:
            w(f"| {label} | {value} | {'yes' if ok else 'no'} |")
        w("")
    if startup:
        base = startup["python -c pass"]
        ck = startup["ckptlint check (1 file, no trigger)"]
        w("## Start-up\n")
        w("| command | median wall (s) | median CPU (s) |")
        w("|---|---:|---:|")
        for k, v in startup.items():
            w(f"| {k} | {v['wall']:.3f} | {v['cpu']:.3f} |")
        d = ck["wall"] - base["wall"]
        w("")
        w(f"ckptlint start-up over `python -c pass`: {d * 1000:.0f} ms wall, "
          f"{(ck['cpu'] - base['cpu']) * 1000:.0f} ms CPU (target: within 100 ms): "
          f"{'met' if d <= 0.1 else 'not met'}.\n")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--corpus", default="timm,transformers")
    ap.add_argument("--skip", default="", help="comma-separated: torchfix, bandit, ruff")
    ap.add_argument("--work", help="where to unpack the sdists (default: a folder in the temp dir)")
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS-static.md")
    args = ap.parse_args()
    if args.reps < 3:
        print("bench: fewer than 3 rounds; the targets ask for at least 3", file=sys.stderr)
    work = Path(args.work or Path(tempfile.gettempdir()) / "ckptlint-bench")
    work.mkdir(parents=True, exist_ok=True)
    trig = triggers()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    corpora = [bench_corpus(n.strip(), work, args.reps, trig, skip) for n in args.corpus.split(",") if n.strip()]
    startup = bench_startup(args.reps, work)
    text = table(corpora, startup, args.reps)
    print(text)
    if args.write:
        (HERE / "RESULTS-static.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
