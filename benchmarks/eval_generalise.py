"""Hand-labelled evaluation on code bases the rules were not developed on (issue 20).

A new user's run: `ckptlint check .` in the code base's root, default rule selection, no
config of ours (the code base's own pyproject.toml / setup.py / requirements are read, as for
any user). Each finding is keyed stably (package, path, code, a hash of the stripped source
line, and an occurrence number among equal keys), so labels survive line shifts. Labels live
in benchmarks/eval_labels/<name>-<version>.json:

    {"findings": {KEY: {"label": "right|wrong|borderline", "reason": "...", "line": 12}},
     "fixes":    {KEY: {"verdict": "keeps-working|breaks|depends", "reason": "...",
                        "executed": "what was run, or empty"}},
     "sites":    {SITE_KEY: {"should": ["CKPT002", ...], "reason": "...", "line": 40}}}

`fixes` are keyed like the finding whose unsafe fix they judge; `sites` come from a grep of
every torch.load / torch.save / load_state_dict / hub-download site (a fixed-seed sample per
package) and say which rules should report there; recall = reported / should-report.

    python benchmarks/eval_generalise.py fetch --set all
    python benchmarks/eval_generalise.py show --set dev [--only NAME] [--unlabelled]
    python benchmarks/eval_generalise.py fixes --only NAME      # applies --unsafe-fixes in a copy
    python benchmarks/eval_generalise.py sites --only NAME [--unlabelled]
    python benchmarks/eval_generalise.py draft --only NAME > LINES        # lines to edit
    python benchmarks/eval_generalise.py label --only NAME --file LINES   # see cmd_label
    python benchmarks/eval_generalise.py report --set dev [--details]
    python benchmarks/eval_generalise.py smoke --set heldout    # lints, prints counts only
    python benchmarks/eval_fix_shapes.py                         # the `exec:` shapes, run

The HELD-OUT set is for the final measurement: `smoke` checks that it downloads and lints
without printing any finding.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import eval_corpus  # noqa: E402

LABELS = HERE / "eval_labels"
WORK = Path(tempfile.gettempdir()) / "ckptlint-eval-generalise"
OUT = eval_corpus.CORPORA / "_eval_generalise"  # raw outputs (findings, fix diffs), not committed

# Not among eval_corpus.PACKAGES / DISTRIBUTED (the 47 used in development) nor the code bases
# of RESULTS-eval.md / RESULTS-fix.md. Each was grepped for torch.load / torch.save first:
# k-diffusion, effdet, segmentation-models-pytorch, chronos-forecasting, x-transformers and
# deepforest were dropped (no torch.load / torch.save: safetensors or nothing to save), and
# stable-audio-tools (no download).
CANDIDATES = [
    # (name, version, domain)
    ("speechbrain", "1.1.2", "speech"),
    ("asteroid", "0.7.0", "speech"),
    ("pyannote-audio", "4.0.7", "speech"),
    ("openai-whisper", "20250625", "speech"),
    ("coqui-tts", "0.28.0", "speech"),
    ("demucs", "4.1.0", "speech"),
    ("s3prl", "0.4.18", "speech"),
    ("audiocraft", "1.3.0", "speech"),
    ("tianshou", "2.0.1", "rl"),
    ("d3rlpy", "2.8.1", "rl"),
    ("torchrl", "0.14.1", "rl"),
    ("pfrl", "0.4.0", "rl"),
    ("sample-factory", "2.1.1", "rl"),
    ("rl-games", "1.6.5", "rl"),
    ("skrl", "2.1.1", "rl"),
    ("diffusers", "0.42.1", "diffusion"),
    ("video-diffusion-pytorch", "0.7.0", "diffusion"),
    ("mmdet", "3.3.0", "detection"),
    ("yolox", "0.3.0", "detection"),
    ("super-gradients", "3.7.1", "detection"),
    ("segment-anything", "1.0", "detection"),
    ("rfdetr", "1.11.2", "detection"),
    ("mmsegmentation", "1.2.2", "detection"),
    ("pytorch-tabnet", "4.1.0", "tabular"),
    ("pytorch-tabular", "1.2.0", "tabular"),
    ("pytorch-widedeep", "1.7.0", "tabular"),
    ("pytorch-forecasting", "1.8.0", "forecasting"),
    ("neuralforecast", "3.3.0", "forecasting"),
    ("darts", "0.48.1", "forecasting"),
    ("tsai", "1.0.1", "forecasting"),
    ("allennlp", "2.10.1", "nlp"),
    ("opennmt-py", "3.5.1", "nlp"),
    ("stanza", "1.15.0", "nlp"),
    ("kornia", "0.9.0", "research"),
    ("pytorch-metric-learning", "2.9.0", "research"),
    ("avalanche-lib", "0.6.0", "research"),
    ("torch-geometric", "2.8.1", "research"),
    ("nerfstudio", "1.1.5", "research"),
    ("audiolm-pytorch", "2.4.0", "research"),
    ("torchreid", "0.2.5", "research"),
    ("mmpretrain", "1.2.0", "research"),
    ("fastai", "2.8.12", "research"),
]
SEED = 20  # issue 20
DEV_SHARE = 0.3


def split() -> Tuple[list, list]:
    """DEV / HELD-OUT: within each domain, a fixed-seed shuffle; the first ~30% go to DEV
    (at least one per domain), so both sets span every domain."""
    by_domain: Dict[str, list] = defaultdict(list)
    for entry in CANDIDATES:
        by_domain[entry[2]].append(entry)
    rng = random.Random(SEED)
    dev, held = [], []
    for domain in sorted(by_domain):
        group = sorted(by_domain[domain])
        rng.shuffle(group)
        n = max(1, round(len(group) * DEV_SHARE))
        dev += group[:n]
        held += group[n:]
    return dev, held


DEV, HELDOUT = split()


def chosen(which: str, only: str = "") -> list:
    sets = {"dev": DEV, "heldout": HELDOUT, "all": DEV + HELDOUT}
    names = set(filter(None, only.split(",")))
    out = [e for e in sets[which] if not names or e[0] in names]
    if names and not out:
        raise SystemExit(f"not in the {which} set: {only}")
    return out


# ---------------------------------------------------------------- linting

def _copy(src: Path, where: str, fresh: bool = False) -> Path:
    """A copy outside this repository (inside it, this repository would be the project)."""
    dest = WORK / where / src.name
    if fresh and dest.exists():
        shutil.rmtree(dest)
    if not dest.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    return dest


def _ckptlint(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "ckptlint", "check", ".", "--no-cache", "--exit-zero", *extra],
        capture_output=True, text=True, env=env, cwd=cwd,
    )


def lint(name: str, version: str) -> Tuple[Path, list]:
    """The default run on a pristine copy: findings with paths relative to the code base."""
    src = eval_corpus.fetch(name, version)
    path = _copy(src, "lint")
    proc = _ckptlint(path, "--output-format", "json")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"ckptlint failed on {path}: {proc.stderr}")
    found = json.loads(proc.stdout)
    for d in found:
        d["path"] = os.path.relpath(d["filename"], path)
    _keyed(found, path)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}-{version}.findings.json").write_text(json.dumps(found, indent=1))
    return path, found


def _lines(path: Path) -> List[str]:
    try:
        # bytes.splitlines: rows end where ckptlint counts them
        return [ln.decode("utf-8", "replace") for ln in path.read_bytes().splitlines()]
    except OSError:
        return []


def _cells(path: Path) -> List[List[str]]:
    """A notebook's cells as lists of source lines (every cell, as the linter numbers them)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for c in nb.get("cells", []):
        src = c.get("source", "")
        out.append(("".join(src) if isinstance(src, list) else src).splitlines())
    return out


def _cell_lines(path: Path, cell: int) -> List[str]:
    cells = _cells(path)
    return cells[cell - 1] if 0 < cell <= len(cells) else []


def _hash(text: str) -> str:
    return hashlib.sha1(" ".join(text.split()).encode()).hexdigest()[:10]


def _keyed(found: list, base: Path) -> None:
    """key = path|code|hash of the stripped line; #n on repeats, in file order."""
    seen: Counter = Counter()
    cache: Dict[str, List[str]] = {}
    for d in sorted(found, key=lambda d: (d["path"], d.get("cell") or 0,
                                          (d.get("location") or {}).get("row") or 0, d["code"])):
        cell = d.get("cell")  # notebooks: the row counts within that (1-based) cell
        where = f"{d['path']}#{cell}" if cell else d["path"]
        if where not in cache:
            cache[where] = _cell_lines(base / d["path"], cell) if cell else _lines(base / d["path"])
        lines = cache[where]
        row = (d.get("location") or {}).get("row") or 0
        text = lines[row - 1] if 0 < row <= len(lines) else ""
        key = f"{d['path']}|{d['code']}|{_hash(text)}"
        seen[key] += 1
        d["key"] = key if seen[key] == 1 else f"{key}#{seen[key]}"
        d["row"] = row


def context(base: Path, rel: str, row: int, before: int = 4, after: int = 3, cell: Optional[int] = None) -> str:
    text = _cell_lines(base / rel, cell) if cell else _lines(base / rel)
    lo, hi = max(0, row - 1 - before), min(len(text), row + after)
    return "\n".join(f"{'>' if i + 1 == row else ' '}{i + 1:5d} {text[i]}" for i in range(lo, hi))


def unsafe_fix(d: dict) -> bool:
    return bool(d.get("fix")) and d["fix"].get("applicability") == "unsafe"


# ---------------------------------------------------------------- labels

def labels_path(name: str, version: str) -> Path:
    return LABELS / f"{name}-{version}.json"


def read_labels(name: str, version: str) -> dict:
    p = labels_path(name, version)
    data = json.loads(p.read_text()) if p.exists() else {}
    for part in ("findings", "fixes", "sites"):
        data.setdefault(part, {})
    return data


FINDING_LABELS = ("right", "wrong", "borderline")
FIX_VERDICTS = ("keeps-working", "breaks", "depends")


def fix_shapes() -> Tuple[set, set]:
    """The shapes benchmarks/eval_fix_shapes.py builds, and those whose fixed load fails
    (read from its source: that script imports torch, this one does not)."""
    text = (HERE / "eval_fix_shapes.py").read_text()
    shapes = set(re.findall(r'^    "([\w-]+)": \w+,$', text, re.M))
    block = re.search(r"EXPECTED_TO_FAIL = \{(.*?)\}", text, re.S)
    failing = set(re.findall(r'"([\w-]+)"', block.group(1))) if block else set()
    return shapes, failing


def check_labels(pkg: str, data: dict) -> List[str]:
    bad = []
    shapes, failing = fix_shapes()
    for k, v in data["findings"].items():
        if v.get("label") not in FINDING_LABELS or not v.get("reason"):
            bad.append(f"{pkg}: finding {k}: label must be one of {FINDING_LABELS} with a reason")
    for k, v in data["fixes"].items():
        if v.get("verdict") not in FIX_VERDICTS or not v.get("reason"):
            bad.append(f"{pkg}: fix {k}: verdict must be one of {FIX_VERDICTS} with a reason")
        ran = v.get("executed")
        if ran and ran not in shapes:
            bad.append(f"{pkg}: fix {k}: executed shape {ran!r} is not in eval_fix_shapes.py")
        elif ran and v.get("verdict") != "depends" and (ran in failing) != (v.get("verdict") == "breaks"):
            bad.append(f"{pkg}: fix {k}: verdict {v.get('verdict')} contradicts shape {ran!r}")
    for k, v in data["sites"].items():
        if not isinstance(v.get("should"), list) or not v.get("reason"):
            bad.append(f"{pkg}: site {k}: needs `should` (a list of codes) and a reason")
    return bad


# ---------------------------------------------------------------- the grep of sites

_ALIAS = re.compile(r"^\s*import\s+torch\s+as\s+(\w+)", re.M)
_FROM = re.compile(r"^\s*from\s+torch(?:\.serialization)?\s+import\s+(?:\(([^)]*)\)|([^\n#]+))", re.M)
KINDS = ("load", "save", "hub", "lsd")
# ruff's default `exclude` (and __pycache__)
RUFF_EXCLUDE = {
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache",
    ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox",
    ".venv", ".vscode", "__pypackages__", "_build", "buck-out", "dist", "node_modules",
    "site-packages", "venv", "__pycache__",
}
SAMPLE = {"load": 40, "hub": 10, "save": 25, "lsd": 10}  # per package, fixed seed


def _patterns(text: str) -> List[Tuple[str, re.Pattern]]:
    mods = ["torch", r"torch\.serialization"] + _ALIAS.findall(text)
    bare = {"load": [], "save": []}
    for paren, line in _FROM.findall(text):
        for item in (paren or line).replace("\n", " ").split(","):
            parts = item.split()
            if parts and parts[0] in bare:
                bare[parts[0]].append(parts[-1])  # `load` or `load as tl`
    mod = "|".join(mods)
    out = []
    for kind in ("load", "save"):
        alts = [rf"(?<![\w.])(?:{mod})\.{kind}\s*\("] + [rf"(?<![\w.]){re.escape(n)}\s*\(" for n in bare[kind]]
        out.append((kind, re.compile("|".join(alts))))
    out.append(("hub", re.compile(r"\b(?:load_state_dict_from_url|load_url)\s*\(")))
    out.append(("lsd", re.compile(r"\.load_state_dict\s*\(")))
    return out


def grep_sites(base: Path) -> List[dict]:
    """Every call site the grep can see, in the folders ruff walks (its default excludes
    only: a dot-folder such as OpenMMLab's `.mim/` is code a user ships), keyed like
    findings. What ckptlint skips there is a recall miss (issue 20: no blind spots)."""
    sites = []
    files = sorted(list(base.rglob("*.py")) + list(base.rglob("*.ipynb")))
    for p in files:
        rel = p.relative_to(base)
        if any(part in RUFF_EXCLUDE for part in rel.parts[:-1]):
            continue
        chunks = [(c + 1, ls) for c, ls in enumerate(_cells(p))] if p.suffix == ".ipynb" else [(None, _lines(p))]
        text = "\n".join("\n".join(ls) for _, ls in chunks)
        if "torch" not in text and "load_state_dict" not in text:
            continue
        pats = _patterns(text)
        for cell, lines in chunks:
            for i, line in enumerate(lines):
                if line.lstrip().startswith("#"):
                    continue
                for kind, pat in pats:
                    m = pat.search(line)
                    if m:
                        callee = m.group(0).rstrip("( \t").rsplit(".", 1)[-1]
                        sites.append({"path": str(rel), "kind": kind, "row": i + 1, "text": line.strip(),
                                      "span": _span(lines, i), "cell": cell, "callee": callee})
                        break
    seen: Counter = Counter()
    for s in sites:
        where = f"{s['path']}#{s['cell']}" if s["cell"] else s["path"]
        key = f"{where}|{s['kind']}|{_hash(s['text'])}"
        seen[key] += 1
        s["key"] = key if seen[key] == 1 else f"{key}#{seen[key]}"
    return sites


def _span(lines: List[str], i: int) -> int:
    """Rows the statement starting at row i spans (brackets balanced), at most 15."""
    depth = 0
    for j in range(i, min(len(lines), i + 15)):
        code = lines[j].split("#", 1)[0]
        depth += code.count("(") + code.count("[") + code.count("{")
        depth -= code.count(")") + code.count("]") + code.count("}")
        if depth <= 0 and j >= i:
            return j - i + 1
    return 1


def sample_sites(pkg: str, sites: List[dict]) -> List[dict]:
    rng = random.Random(f"{SEED}:{pkg}")
    out = []
    for kind in KINDS:
        group = [s for s in sites if s["kind"] == kind]
        if len(group) > SAMPLE[kind]:
            group = sorted(rng.sample(group, SAMPLE[kind]), key=lambda s: (s["path"], s["row"]))
        out += group
    return sorted(out, key=lambda s: (s["path"], s["row"]))


def reported_at(site: dict, found: list) -> set:
    lo, hi = site["row"], site["row"] + site["span"] - 1
    return {d["code"] for d in found
            if d["path"] == site["path"] and d.get("cell") == site["cell"] and lo <= d["row"] <= hi}


def _syntax(site: dict, base: Path) -> str:
    """What the call passes, to help the labeller (not a label): `weights_only`,
    `map_location` (by keyword, or torch.load's second positional argument), `**kw`,
    `strict=False` (by keyword or load_state_dict's second positional argument)."""
    whole = _cell_lines(base / site["path"], site["cell"]) if site["cell"] else _lines(base / site["path"])
    lines = whole[site["row"] - 1: site["row"] - 1 + site["span"]]
    call = _call(lines, site["kind"], site.get("callee"))
    if call is None:  # not parseable alone (a docstring, a partial statement): the text
        text = " ".join(lines)
        facts = {"weights_only": "weights_only" in text, "map_location": "map_location" in text,
                 "**kw": "**" in text, "strict=False": "strict=False" in text}
    else:
        kw = {k.arg: k.value for k in call.keywords}
        second = call.args[1] if len(call.args) > 1 else None
        strict = kw.get("strict", second if site["kind"] == "lsd" else None)
        facts = {
            "weights_only": "weights_only" in kw,
            "map_location": "map_location" in kw or (site["kind"] == "load" and second is not None),
            "**kw": None in kw or any(isinstance(a, ast.Starred) for a in call.args),
            "strict=False": isinstance(strict, ast.Constant) and strict.value is False,
        }
    return ",".join(f for f, ok in facts.items() if ok) or "-"


_CALLEES = {"load": ("load",), "save": ("save",), "hub": ("load_state_dict_from_url", "load_url"),
            "lsd": ("load_state_dict",)}


def _call(lines: List[str], kind: str, callee: Optional[str] = None) -> Optional[ast.Call]:
    """The first call of this kind (or of the name the grep matched, an alias such as
    `from torch import load as tl`) in the statement, when the statement parses on its own."""
    text = textwrap.dedent("\n".join(lines))
    for attempt in (text, text.rstrip().rstrip(":") + ":\n    pass", "(" + text.strip() + ")"):
        try:
            tree = ast.parse(attempt)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in _CALLEES[kind] or (callee and name == callee):
                    return node
    return None


# ---------------------------------------------------------------- commands

def cmd_fetch(args) -> int:
    for name, version, domain in chosen(args.set, args.only):
        print(f"{name}=={version} ({domain}): {eval_corpus.fetch(name, version)}")
    return 0


def cmd_show(args) -> int:
    for name, version, domain in chosen(args.set, args.only):
        base, found = lint(name, version)
        labels = read_labels(name, version)
        for d in found:
            if args.code and d["code"] not in args.code.split(","):
                continue
            if args.unlabelled and d["key"] in labels["findings"] and (
                    not unsafe_fix(d) or d["key"] in labels["fixes"]):
                continue
            fix = d.get("fix") or {}
            print(f"--- {d['key']}  (row {d['row']})")
            print(f"    {d['code']}: {d['message']}")
            if d.get("help"):
                print("    help: " + d["help"].replace("\n", "\n          "))
            if fix:
                print(f"    fix ({fix.get('applicability')}): {fix.get('message')}")
            print(context(base, d["path"], d["row"], cell=d.get("cell")))
        print(f"=== {name}=={version}: {len(found)} findings", file=sys.stderr)
    return 0


def cmd_fixes(args) -> int:
    """`--fix --unsafe-fixes` on a fresh copy; the diff against the pristine copy goes to OUT."""
    for name, version, _ in chosen(args.set, args.only):
        pristine, found = lint(name, version)
        src = eval_corpus.fetch(name, version)
        fixed = _copy(src, "fixed", fresh=True)
        proc = _ckptlint(fixed, "--fix", "--unsafe-fixes")
        diff = subprocess.run(["diff", "-ru", str(pristine), str(fixed)], capture_output=True, text=True).stdout
        diff = diff.replace(str(pristine) + "/", "a/").replace(str(fixed) + "/", "b/")
        (OUT / f"{name}-{version}.unsafe-fixes.diff").write_text(diff)
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-1:]  # the summary
        n_unsafe = sum(unsafe_fix(d) for d in found)
        print(f"=== {name}=={version}: {n_unsafe} unsafe fixes offered; run says: {' / '.join(tail)}")
        print(f"    diff: {OUT / f'{name}-{version}.unsafe-fixes.diff'}")
        for d in found:
            if unsafe_fix(d):
                print(f"    {d['key']}  (row {d['row']}) {d['fix'].get('message')}")
    return 0


def cmd_sites(args) -> int:
    for name, version, _ in chosen(args.set, args.only):
        base, found = lint(name, version)
        labels = read_labels(name, version)
        sites = grep_sites(base)
        sample = sample_sites(f"{name}=={version}", sites)
        print(f"=== {name}=={version}: {len(sites)} sites, {len(sample)} sampled "
              f"({dict(Counter(s['kind'] for s in sites))})")
        for s in sample:
            if args.unlabelled and s["key"] in labels["sites"]:
                continue
            rep = ",".join(sorted(reported_at(s, found))) or "-"
            print(f"--- {s['key']}  (row {s['row']}) reported: {rep}  passes: {_syntax(s, base)}")
            print(context(base, s["path"], s["row"], 2, max(2, s["span"]), cell=s.get("cell")))
    return 0


def cmd_label(args) -> int:
    """Merge labels written by row into the labels file (rows change, keys do not). Lines:
        F PATH:ROW CODE right|wrong|borderline REASON
        X PATH:ROW CODE keeps-working|breaks|depends [exec:WHAT_RAN] REASON
        S PATH:ROW KIND CODES|- REASON        (KIND: load, save, hub, lsd)
    PATH may be any suffix of the path (a notebook's: PATH#CELL, rows within the cell);
    `#` starts a comment line."""
    (name, version, _), = chosen(args.set, args.only)
    base, found = lint(name, version)
    sites = grep_sites(base)
    data = read_labels(name, version)
    for raw in Path(args.file).read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        kind, where, what, verdict, reason = raw.split(None, 4)
        path, row = where.rsplit(":", 1)
        path, _, cell = path.partition("#")  # a notebook: PATH#CELL:ROW
        match = (lambda x: x["path"].endswith(path) and x["row"] == int(row)
                 and (x.get("cell") or None) == (int(cell) if cell else None))
        if kind == "S":
            hits = [s for s in sites if match(s) and s["kind"] == what]
        else:
            hits = [d for d in found if match(d) and d["code"] == what]
        if len(hits) != 1:
            raise SystemExit(f"{len(hits)} matches for: {raw}")
        key = hits[0]["key"]
        if kind == "F":
            data["findings"][key] = {"label": verdict, "reason": reason, "line": int(row)}
        elif kind == "X":
            executed = ""
            if reason.startswith("exec:"):
                executed, _, reason = reason.partition(" ")
                executed = executed[len("exec:"):]
            data["fixes"][key] = {"verdict": verdict, "reason": reason, "executed": executed, "line": int(row)}
        else:
            codes = [] if verdict == "-" else verdict.split(",")
            data["sites"][key] = {"should": codes, "reason": reason, "line": int(row)}
    problems = check_labels(f"{name}=={version}", data)
    if problems:
        raise SystemExit("\n".join(problems))
    LABELS.mkdir(exist_ok=True)
    for part in ("findings", "fixes", "sites"):
        data[part] = dict(sorted(data[part].items()))
    labels_path(name, version).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{labels_path(name, version)}: {len(data['findings'])} findings, {len(data['fixes'])} fixes, "
          f"{len(data['sites'])} sites labelled")
    return 0


def _where(x: dict) -> str:
    return f"{x['path']}#{x['cell']}:{x['row']}" if x.get("cell") else f"{x['path']}:{x['row']}"


def cmd_draft(args) -> int:
    """Label lines to edit for what has no label yet (sites get the syntax's guess, which
    the labeller checks against the code: content, **kwargs in a dict, whole-model saves)."""
    (name, version, _), = chosen(args.set, args.only)
    base, found = lint(name, version)
    labels = read_labels(name, version)
    for d in found:
        if d["key"] not in labels["findings"]:
            print(f"F {_where(d)} {d['code']} right ?")
        if unsafe_fix(d) and d["key"] not in labels["fixes"]:
            print(f"X {_where(d)} {d['code']} keeps-working ?")
    for s in sample_sites(f"{name}=={version}", grep_sites(base)):
        if s["key"] in labels["sites"]:
            continue
        facts = _syntax(s, base)
        if s["kind"] == "load":
            codes = [] if "**kw" in facts else (
                ([] if "weights_only" in facts else ["CKPT002"]) + ([] if "map_location" in facts else ["CKPT004"]))
        elif s["kind"] == "hub":
            codes = [] if "weights_only" in facts or "**kw" in facts else ["CKPT011"]
        elif s["kind"] == "lsd":
            codes = ["CKPT006"] if "strict=False" in facts else []
        else:
            codes = []
        print(f"S {_where(s)} {s['kind']} {','.join(codes) or '-'} ?  # {s['text'][:90]}")
    return 0


def cmd_smoke(args) -> int:
    """Download and lint: counts of findings only (the held-out set stays unread)."""
    for name, version, domain in chosen(args.set, args.only):
        _, found = lint(name, version)
        print(f"{name}=={version} ({domain}): lints, {len(found)} findings")
    return 0


RECALL_CODES = ("CKPT001", "CKPT002", "CKPT003", "CKPT004", "CKPT006", "CKPT011")


def cmd_report(args) -> int:
    rules: Dict[str, Counter] = defaultdict(Counter)
    fixes: Counter = Counter()
    recall: Dict[str, Counter] = defaultdict(Counter)
    problems: List[str] = []
    details: List[str] = []
    n_sites = n_sampled = 0
    for name, version, _ in chosen(args.set, args.only):
        pkg = f"{name}=={version}"
        base, found = lint(name, version)
        labels = read_labels(name, version)
        problems += check_labels(pkg, labels)
        keys = {d["key"] for d in found}
        for d in found:
            lab = labels["findings"].get(d["key"])
            rules[d["code"]]["findings"] += 1
            rules[d["code"]][lab["label"] if lab else "unlabelled"] += 1
            if not lab:
                problems.append(f"{pkg}: unlabelled finding {d['key']} (row {d['row']})")
            elif lab["label"] != "right":
                details.append(f"{pkg} {d['path']}:{d['row']} {d['code']} {lab['label']}: {lab['reason']}")
            if unsafe_fix(d):
                fl = labels["fixes"].get(d["key"])
                fixes[fl["verdict"] if fl else "unlabelled"] += 1
                if fl and fl.get("executed"):
                    fixes["executed"] += 1
                if not fl:
                    problems.append(f"{pkg}: unlabelled unsafe fix {d['key']} (row {d['row']})")
                elif fl["verdict"] != "keeps-working":
                    details.append(f"{pkg} {d['path']}:{d['row']} {d['code']} fix {fl['verdict']}: {fl['reason']}")
        stale = [k for k in labels["findings"] if k not in keys]
        if stale:
            details.append(f"{pkg}: {len(stale)} labelled findings no longer reported: " + ", ".join(stale[:5]))
        sites = grep_sites(base)
        sample = sample_sites(pkg, sites)
        n_sites += len(sites)
        n_sampled += len(sample)
        for s in sample:
            lab = labels["sites"].get(s["key"])
            if lab is None:
                problems.append(f"{pkg}: unlabelled site {s['key']} (row {s['row']})")
                continue
            rep = reported_at(s, found)
            for code in lab["should"]:
                recall[code]["should"] += 1
                if code in rep:
                    recall[code]["reported"] += 1
                else:
                    details.append(f"{pkg} {s['path']}:{s['row']} recall miss {code}: {lab['reason']}")
    print(f"\n| rule | findings | right | wrong | borderline | unlabelled | precision |")
    print("|---|---|---|---|---|---|---|")
    total: Counter = Counter()
    for code in sorted(rules):
        c = rules[code]
        total.update(c)
        print(_row(code, c))
    print(_row("**all**", total))
    print(f"\nunsafe fixes: {fixes['keeps-working']} keep working, {fixes['breaks']} break, "
          f"{fixes['depends']} depend, {fixes['unlabelled']} unlabelled "
          f"({fixes['executed']} judged by running the fixed load)")
    print(f"\nrecall on {n_sampled} sampled of {n_sites} grepped sites:")
    print("| rule | should report | reported | recall |")
    print("|---|---|---|---|")
    for code in sorted(recall):
        r = recall[code]
        rate = f"{r['reported'] / r['should']:.3f}" if r["should"] else "-"
        print(f"| {code} | {r['should']} | {r['reported']} | {rate} |")
    if args.details:
        print("\n" + "\n".join(details))
    if problems:
        print(f"\n{len(problems)} problems (unlabelled or malformed):")
        print("\n".join(problems[: args.max_problems]))
    return 0


def _row(code: str, c: Counter) -> str:
    judged = c["right"] + c["wrong"]
    prec = f"{c['right'] / judged:.3f}" if judged else "-"
    return (f"| {code} | {c['findings']} | {c['right']} | {c['wrong']} | {c['borderline']} | "
            f"{c['unlabelled']} | {prec} |")


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("fetch", "show", "fixes", "sites", "report", "smoke", "list", "label", "draft"):
        p = sub.add_parser(cmd)
        p.add_argument("--set", choices=("dev", "heldout", "all"), default="dev")
        p.add_argument("--only", default="", help="comma-separated package names")
        p.add_argument("--unlabelled", action="store_true", help="only what has no label yet")
        p.add_argument("--code", default="", help="show: only these codes")
        p.add_argument("--details", action="store_true", help="report: list every non-right label and miss")
        p.add_argument("--max-problems", type=int, default=50)
        p.add_argument("--file", default="", help="label: the lines to merge")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for which, group in (("dev", DEV), ("heldout", HELDOUT)):
            if args.set in (which, "all"):
                for name, version, domain in group:
                    print(f"{which:8} {domain:12} {name}=={version}")
        return 0
    return globals()[f"cmd_{args.cmd}"](args)


if __name__ == "__main__":
    sys.exit(main())
