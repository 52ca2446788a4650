"""Compare `ckptlint verify` with picklescan, modelscan and fickling on the verify corpus.

One run builds the corpus of issues 12 and 21 with the builders the tests use
(tests/runtime/corpus: hostile.py with containers.py, differential.py, benign.py) into a temp
folder, runs every tool on every file, then proves which hostile files really run code under
the real loaders (corpus/prove.py: torch.load(weights_only=False), pickle.load, joblib.load,
pickle.load of gzip/lzma/zstd streams, torch.export.load, DCP).

Each tool runs in a worker process of its own that imports the tool once, scans one warm-up
file, then scans the corpus one file at a time and times each scan inside the process (a
crash or a hang of one scan is recorded as an error and the worker restarts after it).
Separately, each tool's start-up is timed: a fresh process that imports it and scans one
small benign checkpoint. ckptlint runs in this interpreter (`ckptlint.cli.verify.run`, the
`verify --output-format json` command); the peers run in their own venv, which must hold no
torch (create it with --install-peers). A peer that is not installed is skipped, saying so.

Verdicts, per tool and file: `danger` (the tool says it is dangerous / runs code; the label
gives its severity), `warn` (flagged short of that: suspicious, unknown, unreadable),
`clean`, `skip` (the tool said it does not scan this file) or `error` (the tool raised,
crashed, timed out or reported a scan error and nothing dangerous). A hostile file is caught
only by `danger`; a benign file is a false alarm only when called `danger`.

    python benchmarks/bench_verify_peers.py [--install-peers] [--peers-python PY] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import select
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_VENV = HERE / ".venv-peers"
PEER_PINS = ["picklescan==1.0.5", "modelscan==0.8.8", "fickling==0.1.12",
             "typing-extensions"]  # fickling 0.1.12 imports it on Python < 3.12 without requiring it
TOOLS = ["ckptlint", "picklescan", "picklescan.strict", "modelscan", "fickling.is_likely_safe", "fickling.scan"]
MODULE = {"ckptlint": "ckptlint", "picklescan": "picklescan", "picklescan.strict": "picklescan",
          "modelscan": "modelscan", "fickling.is_likely_safe": "fickling", "fickling.scan": "fickling"}

# -- worker side: stdlib only at import time (it runs in the peers' venv) ----------------


def _ckptlint(path):
    import contextlib
    import io

    from ckptlint.cli.verify import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([path, "--output-format", "json"])
    if code == 2:
        return "error", "exit 2", err.getvalue().strip()[-300:]
    diags = json.loads(out.getvalue())
    codes = sorted({f'{d["code"]} {d.get("severity", "?")}' for d in diags})
    runs = [d for d in diags if d["code"] == "CKPT101" and d.get("severity") == "error"]
    if runs:
        return "danger", " + ".join(codes), runs[0]["message"][:300]
    if diags:
        return "warn", " + ".join(codes), diags[0]["message"][:300]
    return "clean", "", ""


def _picklescan(path, strict=False):
    from picklescan.scanner import SafetyLevel, scan_file_path

    r = scan_file_path(path, strict=strict)
    names = {level: sorted(f"{g.module}.{g.name}" for g in r.globals if g.safety == level) for level in SafetyLevel}
    bad, sus = names[SafetyLevel.Dangerous], names[SafetyLevel.Suspicious]
    note = " (scan error)" if r.scan_err else ""
    if bad:
        return "danger", "dangerous" + note, ", ".join(bad)[:300]
    if r.scan_err:
        return "error", "scan error", ", ".join(sus)[:300]
    if sus:
        return "warn", "suspicious", ", ".join(sus)[:300]
    return "clean", "" if r.scanned_files else "nothing scanned", ""


def _modelscan(path):
    from modelscan.modelscan import ModelScan

    r = ModelScan().scan(path)
    sevs = sorted({i["severity"] for i in r["issues"]})
    ops = ", ".join(sorted({f'{i.get("module")}.{i.get("operator")}' for i in r["issues"]}))[:300]
    if {"CRITICAL", "HIGH"} & set(sevs):
        return "danger", "/".join(sevs), ops
    if sevs:
        return "warn", "/".join(sevs), ops
    if r["errors"]:
        return "error", "scan error", "; ".join(str(e.get("description", e)) for e in r["errors"])[:300]
    if not r["summary"]["scanned"]["total_scanned"]:
        skipped = r["summary"]["skipped"]["skipped_files"]
        return "skip", "not scanned", "; ".join(s["description"] for s in skipped)[:300]
    return "clean", "", ""


def _fickling_is_likely_safe(path):
    import fickling

    if fickling.is_likely_safe(path):
        return "clean", "likely safe", ""
    return "danger", "is_likely_safe=False", ""


def _fickling_label(path):
    """The severity behind is_likely_safe's False (its own two steps), computed untimed."""
    from fickling.analysis import check_safety
    from fickling.fickle import Pickled

    with open(path, "rb") as f:
        pickled = Pickled.load(f, fail_on_decode_error=False)
    if pickled.has_invalid_opcode:
        return "is_likely_safe=False: invalid opcode (not a pickle)"
    return f"is_likely_safe=False: {check_safety(pickled).severity.name}"


def _fickling_scan(path):
    """What fickling's own Hugging Face scanner (fickling.cli._scan_huggingface) does with a
    downloaded file: zip archives member by member, raw pickles as stacked pickles, the rest
    skipped."""
    from fickling.analysis import Severity
    from fickling.loader import scan_file, scan_zip_archive
    from fickling.polyglot import find_file_properties

    ext = os.path.splitext(path)[1].lower()
    props = find_file_properties(path)
    if props["is_torch_zip"] or props["is_standard_zip"] or ext in (".pt", ".pth"):
        results = list(scan_zip_archive(path, graceful=True).values())
    elif props["is_valid_pickle"] or ext in (".bin", ".pkl", ".pickle"):
        results = [scan_file(path, graceful=True)]
    else:
        return "skip", "not scanned", "7z/tar/numpy or unknown extension"
    if not results:
        return "clean", "no pickle member", ""
    worst = max((r.severity for r in results), default=Severity.LIKELY_SAFE)
    errors = "; ".join(e for r in results for e in r.errors)[:300]
    msgs = "; ".join(sorted({str(x) for r in results for ar in r.results for x in ar.results
                             if x.severity > Severity.LIKELY_SAFE}))[:300]
    if worst >= Severity.LIKELY_UNSAFE:
        return "danger", worst.name + (" (+ scan error)" if errors else ""), msgs or errors
    if errors:
        return "error", worst.name + " (scan error)", errors
    if worst > Severity.LIKELY_SAFE:
        return "warn", worst.name, msgs
    return "clean", "", ""


SCANNERS = {"ckptlint": _ckptlint, "picklescan": _picklescan,
            "picklescan.strict": lambda path: _picklescan(path, strict=True), "modelscan": _modelscan,
            "fickling.is_likely_safe": _fickling_is_likely_safe, "fickling.scan": _fickling_scan}


def _version(tool):
    if tool == "ckptlint":
        import ckptlint

        return getattr(ckptlint, "__version__", "?")
    from importlib.metadata import version

    return version(MODULE[tool])


def worker(tool, jobs_file, start) -> int:
    """Print one JSON line per file of JOBS (from index START): verdict, label, detail, seconds."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the tools' own prints and logs go to stderr
    sys.stdout = sys.stderr
    with open(jobs_file) as f:
        jobs = json.load(f)
    scan = SCANNERS[tool]
    try:  # lazy imports and first-call set-up are start-up, not per-file cost
        scan(jobs["warmup"])
    except Exception:
        pass  # the same exception is recorded when the file is scanned for real
    out.write(json.dumps({"version": _version(tool)}) + "\n")
    out.flush()
    for i in range(start, len(jobs["paths"])):
        t = time.perf_counter()
        try:
            verdict, label, detail = scan(jobs["paths"][i])
        except Exception as e:  # the tool raised: its verdict is "error"
            verdict, label, detail = "error", type(e).__name__, str(e)[:300]
        seconds = time.perf_counter() - t
        if tool == "fickling.is_likely_safe" and verdict == "danger":
            try:
                label = _fickling_label(jobs["paths"][i])
            except Exception as e:
                label = f"is_likely_safe=False ({type(e).__name__} on relabel)"
        out.write(json.dumps({"i": i, "verdict": verdict, "label": label, "detail": detail,
                              "seconds": seconds}) + "\n")
        out.flush()
    return 0


# -- parent side: run the workers ----------------------------------------------------------


def _env(tool):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if tool == "ckptlint":
        env["PYTHONPATH"] = str(REPO)
    return env


def _python(tool, peers_python):
    return sys.executable if tool == "ckptlint" else peers_python


def available(tool, peers_python) -> str:
    """'' when the tool can run, else why not."""
    py = _python(tool, peers_python)
    if not py or not pathlib.Path(py).exists():
        return f"no peers interpreter ({py or 'none'}; create it with --install-peers)"
    proc = subprocess.run([py, "-c", f"import {MODULE[tool]}"], env=_env(tool), capture_output=True, text=True)
    return "" if proc.returncode == 0 else f"`import {MODULE[tool]}` fails in {py}"


def run_tool(tool, py, paths, warmup, workdir, timeout):
    """[{verdict, label, detail, seconds}] per path, and the tool's version."""
    jobs = workdir / f"jobs-{tool}.json"
    jobs.write_text(json.dumps({"paths": [str(p) for p in paths], "warmup": str(warmup)}))
    results, version, start = [None] * len(paths), "?", 0
    while start < len(paths):
        proc = subprocess.Popen([py, str(pathlib.Path(__file__).resolve()), "--worker", tool, str(jobs),
                                 "--start", str(start)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=str(workdir), env=_env(tool))
        buf, deadline = b"", time.monotonic() + timeout + 60  # start-up allowance
        while start < len(paths):
            line, buf, status = _read_line(proc, buf, deadline)
            if status != "line" and version == "?":
                proc.kill()
                raise RuntimeError(f"the {tool} worker failed before its first file (exit {proc.wait()})")
            if status != "line":
                proc.kill()
                proc.wait()
                why = f"timed out after {timeout:.0f} s" if status == "timeout" else f"crashed (exit {proc.returncode})"
                results[start] = {"verdict": "error", "label": why, "detail": "", "seconds": float("nan")}
                start += 1
                break
            msg = json.loads(line)
            deadline = time.monotonic() + timeout
            if "version" in msg:
                version = msg["version"]
                continue
            results[msg["i"]] = {k: msg[k] for k in ("verdict", "label", "detail", "seconds")}
            start = msg["i"] + 1
        else:
            proc.wait()
    return results, version


def _read_line(proc, buf, deadline):
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, buf, "timeout"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            proc.wait()
            return None, buf, "eof"
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line, rest, "line"


def startup(tool, py, warmup, workdir, repeats=3) -> float:
    """Median wall time of a fresh process that imports the tool and scans the warm-up file."""
    jobs = workdir / f"startup-{tool}.json"
    jobs.write_text(json.dumps({"paths": [str(warmup)], "warmup": str(warmup)}))
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run([py, str(pathlib.Path(__file__).resolve()), "--worker", tool, str(jobs)],
                              cwd=str(workdir), env=_env(tool), capture_output=True)
        if proc.returncode != 0:
            return None
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


# -- the corpus ----------------------------------------------------------------------------

CLASSES = [  # (name prefix, class), first match wins
    ("raw_", "raw pickle, 5 names/extensions"), ("gadget_", "gadget callables (pickle)"),
    ("zip_gadget_", "gadget callable in a torch zip"), ("unparseable_", "unparseable after the call (pickle)"),
    ("zip_unparseable_", "unparseable after the call (torch zip)"), ("frame_", "crafted protocol-4 frame (pickle)"),
    ("zip_frame_", "crafted protocol-4 frame (torch zip)"), ("legacy_frame_", "crafted frame (legacy stream)"),
    ("zip_dup", "zip: duplicate data.pkl records"), ("zip_case_clash", "zip: data.pkl beside data.PKL"),
    ("zip_renamed", "zip: record/folder renamed in another case"), ("zip_bad_extra", "zip: malformed extra field"),
    ("zip_cd_offset", "zip: two archives end to end"), ("zip_deflated", "zip: deflated data.pkl"),
    ("legacy_payload", "legacy stream, payload in pickle 0-4"), ("tar_", "torch<0.4 tar format"),
    ("dcp_", "DCP shard / .metadata"),
    # issue 21: which bytes a loader reads
    ("zip_local_", "zip: local header and central directory disagree on the method"),
    ("polyglot_", "polyglot: a pickle that starts like bz2 or a safetensors header"),
    ("pickle_named_", "a pickle named .safetensors"), ("late_protocol0", "protocol-0 pickle, payload after 64 KiB"),
    ("lzma_dict", "compressed: lzma with a 32 KiB dictionary (lzma.open)"),
    ("gzip_split", "compressed: a pickle split across gzip members (gzip.open)"),
    ("zstd_", "compressed: zstd"),
    ("joblib_lz4", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("joblib_lzma", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("joblib_zfile", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("joblib_xz", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("joblib_zlib", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("joblib_bz2", "joblib compressed: lz4, lzma 32 KiB, ZF, xz, zlib, bz2"),
    ("nested_", "nested loads: _load_from_bytes / pickle.loads of literal bytes"),
    ("pt2_", "torch.export .pt2: pickled payloads"),
    ("joblib_", "joblib"), ("diff_", "differential zip variants"),
]


def klass(name) -> str:
    return next(c for prefix, c in CLASSES if name.startswith(prefix))


def build_corpus(root: pathlib.Path):
    """Rows {name, class, kind, path} (kind: hostile / alternative / benign), the loader
    jobs that prove them, and every marker path."""
    sys.path.insert(0, str(REPO))
    import torch

    from tests.runtime.corpus import benign, differential, hostile

    rows, jobs = [], []
    for c in hostile.build(root / "hostile", torch=torch):
        rows.append({"name": c.name, "class": klass(c.name), "group": c.group, "path": str(c.path),
                     "markers": [str(c.marker)]})
        jobs += [(loader, c.load_path if loader == "dcp" else c.path, c.marker) for loader in c.loaders]
    for name, path, tags in differential.variants(root / "differential"):
        rows.append({"name": f"diff_{name}", "class": klass("diff_"), "group": None, "path": str(path),
                     "markers": [m for _, m in tags.values()]})
        jobs += [("torch", path, pathlib.Path(m)) for _, m in tags.values()]
    built = benign.build(root / "benign", torch)
    for name, path in built.items():
        path = pathlib.Path(path)
        if path.is_dir():  # its files are entries of their own
            continue
        if name.endswith(".index.json"):  # the peers get the shards themselves
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            rows += [{"name": f"{path.parent.name}/{s}", "class": "benign", "kind": "benign",
                      "path": str(path.parent / s)} for s in shards]
            continue
        rows.append({"name": name, "class": "benign", "kind": "benign", "path": str(path)})
    return rows, jobs, built["state_dict.pt"]


def prove_rows(rows, jobs, workdir):
    from tests.runtime.corpus.run import prove

    ran = {str(m) for (_, _, m), r in zip(jobs, prove(jobs, workdir)) if r}
    for row in rows:
        if row.get("kind") == "benign":
            continue
        row["proven"] = any(m in ran for m in row["markers"])
        # group members torch does not read, and archives torch refuses, run nothing under
        # torch 2.13: reported apart from the proven files
        row["kind"] = "hostile" if row["proven"] else "alternative"


WEIGHTS_ONLY = (
    "import json, re, sys, torch\n"
    "out = {}\n"
    "for p in sys.argv[1:]:\n"
    "    try:\n"
    "        torch.load(p, weights_only=True, map_location='cpu')\n"
    "        out[p] = 'loads'\n"
    "    except Exception as e:\n"
    "        m = re.search(r'GLOBAL ([\\w.]+)', str(e))\n"
    "        out[p] = 'refuses ' + (m.group(1) if m else type(e).__name__)\n"
    "print(json.dumps(out))\n"
)


def weights_only(rows) -> None:
    """The benign torch files: does `torch.load(weights_only=True)` load them, i.e. do they
    name only globals torch itself allowlists (the first it refuses otherwise)?"""
    paths = [r["path"] for r in rows if r["kind"] == "benign" and r["path"].endswith((".pt", ".pth", ".bin", ".ckpt"))]
    proc = subprocess.run([sys.executable, "-c", WEIGHTS_ONLY, *paths], capture_output=True, text=True, check=True)
    found = json.loads(proc.stdout.splitlines()[-1])
    for r in rows:
        r["weights_only"] = found.get(r["path"], "-")


# -- the report ----------------------------------------------------------------------------


def _cell(results):
    n = len(results)
    caught = sum(r["verdict"] == "danger" for r in results)
    rest = {}
    for r in results:
        if r["verdict"] != "danger":
            rest[r["verdict"]] = rest.get(r["verdict"], 0) + 1
    return f"{caught}/{n}" + (" (" + ", ".join(f"{v} {k}" for k, v in sorted(rest.items())) + ")" if rest else "")


def _times(rows, tool):
    """Seconds of the scans that finished (a crash or time-out has none)."""
    return [r["res"][tool]["seconds"] for r in rows if r["res"][tool]["seconds"] == r["res"][tool]["seconds"]]


def _verdict(r):
    if r["verdict"] == "clean" and not r["label"]:
        return "clean"
    return f'{r["verdict"]}: {r["label"]}' if r["label"] else r["verdict"]


def report(rows, tools, versions, skipped, startups, ran_payload, load) -> str:
    out = []
    p = out.append
    p(f"load average at start / end: {load[0]} / {load[1]}; python {sys.version.split()[0]}")
    p("tools: " + ", ".join(f"{t} {versions[t]}" for t in tools))
    for t, why in skipped.items():
        p(f"skipped {t}: {why}")
    kinds = {k: [r for r in rows if r["kind"] == k] for k in ("hostile", "alternative", "benign")}
    p(f"corpus: {len(kinds['hostile'])} hostile files proven to run code under the real loader, "
      f"{len(kinds['alternative'])} hostile alternatives the real loader does not run, "
      f"{len(kinds['benign'])} benign files")
    if ran_payload:
        p("PAYLOAD RAN UNDER A SCANNER: " + json.dumps(ran_payload))
    p("")
    p("### Hostile files proven to run code, by class (caught = called dangerous)\n")
    p("| class | files | " + " | ".join(tools) + " |")
    p("|---|---|" + "---|" * len(tools))
    for cls in dict.fromkeys(r["class"] for r in kinds["hostile"]):
        sel = [r for r in kinds["hostile"] if r["class"] == cls]
        p(f"| {cls} | {len(sel)} | " + " | ".join(_cell([r["res"][t] for r in sel]) for t in tools) + " |")
    p("| **all** | " + f"{len(kinds['hostile'])} | "
      + " | ".join(_cell([r["res"][t] for r in kinds["hostile"]]) for t in tools) + " |")
    if kinds["alternative"]:
        p("\n### Hostile records the real loader does not run (flagged = called dangerous)\n")
        p("| file | " + " | ".join(tools) + " |")
        p("|---|" + "---|" * len(tools))
        for r in kinds["alternative"]:
            p(f"| {r['name']} | " + " | ".join(_verdict(r["res"][t]) for t in tools) + " |")
    p("\n### Benign files (false alarm = called dangerous)\n")
    p("| file | `torch.load(weights_only=True)` | " + " | ".join(tools) + " |")
    p("|---|---|" + "---|" * len(tools))
    for r in kinds["benign"]:
        p(f"| {r['name']} | {r.get('weights_only', '-')} | " + " | ".join(_verdict(r["res"][t]) for t in tools) + " |")
    p("\n### Summary\n")
    p("| tool | caught | missed (warn / clean / skip / error) | false alarms | errors, all files "
      "| scan time, all files | vs ckptlint | start-up + 1 file | vs ckptlint |")
    p("|---|---|---|---|---|---|---|---|---|")
    base = sum(_times(rows, "ckptlint")) if "ckptlint" in tools else None
    for t in tools:
        h = [r["res"][t]["verdict"] for r in kinds["hostile"]]
        missed = [sum(v == k for v in h) for k in ("warn", "clean", "skip", "error")]
        fa = sum(r["res"][t]["verdict"] == "danger" for r in kinds["benign"])
        err = sum(r["res"][t]["verdict"] == "error" for r in rows)
        total = sum(_times(rows, t))
        ratio = f"{total / base:.1f}x" if base else "-"
        st = startups.get(t)
        st_cell = f"{st * 1000:.0f} ms" if st else "-"
        st_ratio = f"{st / startups['ckptlint']:.1f}x" if st and startups.get("ckptlint") else "-"
        p(f"| {t} | {h.count('danger')}/{len(h)} | {sum(missed)} ({' / '.join(map(str, missed))}) | "
          f"{fa}/{len(kinds['benign'])} | {err} | {total * 1000:.0f} ms | {ratio} | {st_cell} | {st_ratio} |")
    p("\nscan time: per-file scans inside a warm worker process, summed over all "
      f"{len(rows)} files (per file, median: " + ", ".join(
          f"{t} {statistics.median(_times(rows, t) or [0]) * 1000:.2f} ms" for t in tools) + ")")
    p("start-up + 1 file: a fresh process importing the tool and scanning one small torch zip, median of 3")
    p("\n### Where a peer and ckptlint disagree (called dangerous or not), grouped by the peer's answer\n")
    groups = {}
    for r in rows:
        mine = r["res"].get("ckptlint")
        for t in tools[1:] if mine else []:
            theirs = r["res"][t]
            if (theirs["verdict"] == "danger") != (mine["verdict"] == "danger"):
                key = (t, r["kind"], _verdict(mine).split(":")[0], _verdict(theirs))
                groups.setdefault(key, []).append(r["name"])
    for (t, kind, mine, theirs), names in groups.items():
        p(f"- {t} `{theirs}`, ckptlint `{mine}`, {kind} ({len(names)}): " + ", ".join(names))
    return "\n".join(out)


def install_peers() -> int:
    """The peers' venv. fickling.polyglot (its file-type detection) imports torch: the torch
    of this interpreter is installed first, so that nothing pulls in another build."""
    import torch

    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    py = str(PEERS_VENV / "bin" / "python")
    want = torch.__version__.split("+")[0]
    subprocess.run([py, "-m", "pip", "install", "-q", f"torch=={want}"], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", *PEER_PINS], check=True)
    got = subprocess.run([py, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if got.stdout.split("+")[0].strip() != want:
        print(f"the peers' venv has torch {got.stdout.strip()!r}, not {want}: remove {PEERS_VENV}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("jobs", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--install-peers", action="store_true", help=f"create {PEERS_VENV} with {PEER_PINS} first")
    ap.add_argument("--peers-python", default=str(PEERS_VENV / "bin" / "python"),
                    help="the interpreter that has the peers installed (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per file before a scan counts as hung")
    ap.add_argument("--json-out", help="write every row with every tool's verdict here")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.jobs, args.start)
    if args.install_peers and install_peers():
        return 1
    load = [" ".join(f"{x:.2f}" for x in os.getloadavg())]
    skipped = {t: why for t in TOOLS if (why := available(t, args.peers_python))}
    tools = [t for t in TOOLS if t not in skipped]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        workdir = root / "work"
        workdir.mkdir()
        rows, jobs, warmup = build_corpus(root / "corpus")
        markers = [m for r in rows for m in r.get("markers", [])]
        versions, startups, ran_payload = {}, {}, {}
        for t in list(tools):
            try:
                res, versions[t] = run_tool(t, _python(t, args.peers_python), [r["path"] for r in rows], warmup,
                                            workdir, args.timeout)
            except RuntimeError as e:
                skipped[t] = str(e)
                tools.remove(t)
                continue
            for r, x in zip(rows, res):
                r.setdefault("res", {})[t] = x
            if [m for m in markers if os.path.exists(m)]:
                ran_payload[t] = [m for m in markers if os.path.exists(m)]
            startups[t] = startup(t, _python(t, args.peers_python), warmup, workdir)
        prove_rows(rows, jobs, workdir)
        weights_only(rows)
        load.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(report(rows, tools, versions, skipped, startups, ran_payload, load))
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps({"versions": versions, "skipped": skipped, "rows": rows},
                                                          indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
