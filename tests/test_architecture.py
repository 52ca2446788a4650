"""The layers of docs/architecture.md hold: no import circles, each layer imports only from
the layers below it, private helpers stay private, rules keep to the FileContext API, and the
static pass keeps no state between files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT, settings

PACKAGE = ROOT / "ckptlint"

# layer -> the layers it may import from (besides its own); docs/architecture.md
ALLOWED = {
    "base": set(),
    # the torch-free checkpoint reader: knows nothing of the static pass, which uses it to
    # read a checkpoint file a load names (rules/_checkpoint_file.py)
    "reader": {"base"},
    "analysis": {"base", "reader"},
    "rules": {"base", "analysis", "reader"},
    "engine": {"base", "analysis", "rules"},
    "workspace": {"base", "analysis", "rules", "engine"},
    "verify": {"base", "reader", "rules"},  # `ckptlint verify`: the file checks and the model comparison
    "output": {"base", "rules", "workspace"},
    "lsp": {"base", "analysis", "rules", "engine", "workspace", "output"},
    "cli": {"base", "analysis", "rules", "engine", "verify", "reader", "workspace", "output", "lsp"},
}


def _modules() -> dict:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("diagnostic", "entries", "errors", "lazy", "versions"):
        return "base"
    return "cli" if parts[1] == "__main__" else parts[1]


def _imports(module: str, path: Path):
    """(imported ckptlint module, the name imported from it or None, alias) for every import
    statement of the module, at any depth (function-level imports count)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES:
                    yield a.name, None, a.asname or a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                if f"{base}.{a.name}" in MODULES:
                    yield f"{base}.{a.name}", None, a.asname or a.name
                elif base in MODULES:
                    yield base, a.name, None


def graph() -> dict:
    out = {m: {t for t, _, _ in _imports(m, p)} - {m} for m, p in MODULES.items()}
    # the registry imports every rule module by itself (importlib)
    out["ckptlint.rules._registry"] |= {m for m in MODULES if re.match(r"ckptlint\.rules\.ckpt\d", m)}
    return out


def cycles(g: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(graph()) == []


def test_the_checker_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_layer_imports_only_from_the_layers_below():
    wrong = []
    for module, targets in graph().items():
        for target in targets:
            if layer(target) != layer(module) and layer(target) not in ALLOWED[layer(module)]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.slow
def test_private_helpers_stay_private():
    """No module imports or uses another module's `_name`, and a private module (`_paths`,
    `rules._base`) is imported only from inside its own package."""
    wrong = []
    for module, path in MODULES.items():
        aliases = {}
        for target, name, alias in _imports(module, path):
            if alias:
                aliases[alias] = target
            if name and _private(name) and target != module:
                wrong.append(f"{module} imports {target}.{name}")
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if _private(part) and not (module == owner or module.startswith(owner + ".")):
                    wrong.append(f"{module} imports the private module {target}")
                    break
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _private(node.attr)):
                wrong.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert wrong == []


def test_rules_keep_to_the_file_context_api():
    """Rules ask the documented FileContext methods, not the analysis behind them."""
    wrong = []
    for path in sorted((PACKAGE / "rules").glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bctx\.(names\b|_)", line):
                wrong.append(f"{path.name}:{n}: {line.strip()}")
    assert wrong == []


# --- no state between files ----------------------------------------------------------------------
FILES = {
    "models.py": "import torch\nclass Net(torch.nn.Module):\n    pass\n",
    "train.py": (
        "import pickle, torch\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n"
        "from models import Net\nmodel = DDP(Net())\ntorch.save(model, 'net.pt')\n"
        "torch.save(model.state_dict(), 'sd.pt', _use_new_zipfile_serialization=False)\n"
        "pickle.dump(model, open('m.pkl', 'wb'))  # noqa: CKPT002\n"
    ),
    "infer.py": (
        "import os, torch\nos.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n"
        "sd = torch.load('sd.pt', weights_only=False)\nsd = {k.replace('module.', ''): v for k, v in sd.items()}\n"
        "net = torch.load('net.pt')\nnet.load_state_dict(sd, strict=False)\n"
        "try:\n    x = torch.load('a.pt', weights_only=True)\nexcept Exception:\n    x = torch.load('a.pt', weights_only=False)\n"
    ),
}
# memos of pure functions of the installed LibCST: they learn node types, nothing of a file
MEMOS = {("ckptlint.analysis.names", "_FIELDS"), ("ckptlint.analysis.names", "_NODE_TYPES"),
         ("ckptlint.analysis.names", "_VISIT")}


def _containers() -> dict:
    import sys

    out = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(("ckptlint.engine", "ckptlint.analysis", "ckptlint.rules")):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, (dict, list, set)) and (name, attr) not in MEMOS:
                out[(name, attr)] = (id(value), len(value), repr(value)[:2000])
    return out


def _lint_project(root: Path, text_changes: str = "") -> list:
    from ckptlint.analysis.project import ProjectIndex
    from ckptlint.engine.lint import lint

    index = ProjectIndex()
    out = []
    for name, text in FILES.items():
        (root / name).write_text(text + text_changes)
    for name in FILES:
        for fix in (False, True):
            result = lint((root / name).read_text(), settings({"select": ["ALL"]}), index, path=str(root / name),
                          module_name=name[:-3], fix=fix, unsafe_fixes=True)
            out.append(([d.to_json() for d in result.diagnostics], result.fixed, result.dependencies))
    return out


def test_the_static_pass_keeps_no_state_between_files(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "pyproject.toml").write_text("")
    (tmp_path / "two" / "pyproject.toml").write_text("")
    first = _lint_project(tmp_path / "one")
    assert sum(len(d) for d, _, _ in first) > 10, "the files should give findings"
    assert any(deps for _, _, deps in first), "and look into other files"
    before = _containers()
    _lint_project(tmp_path / "two", "\nmodel2 = torch.nn.Linear(2, 2)\ntorch.save(model2, 'lin.pt')\n")
    assert _containers() == before
    # and the same project linted again, with a new index, gives the same results
    assert _lint_project(tmp_path / "one") == first


def test_the_engine_says_what_it_consulted(tmp_path):
    from ckptlint.analysis.project import ProjectIndex
    from ckptlint.engine.lint import lint

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(FILES["models.py"])
    text = "import torch\nfrom models import Net\ntorch.save(Net(), 'n.pt')\n"
    result = lint(text, settings(), ProjectIndex(), path=str(tmp_path / "train.py"), module_name="train")
    assert "CKPT001" in [d.code for d in result.diagnostics]
    assert f"module\0{tmp_path}|True\0models" in result.dependencies
    # a path no save can write: nothing of another file is needed
    alone = lint("import torch\nsd = torch.load(path)\n", settings(), ProjectIndex(), path=str(tmp_path / "a.py"))
    assert [d.code for d in alone.diagnostics] == ["CKPT002", "CKPT004"] and alone.dependencies == []


@pytest.mark.parametrize("path", ["ckptlint/engine", "ckptlint/analysis"])
def test_the_static_pass_never_imports_the_workspace_or_torch(path):
    for file in (ROOT / path).rglob("*.py"):
        text = file.read_text()
        assert not re.search(r"^\s*(from|import) (ckptlint\.(workspace|cli|lsp|verify)|torch)\b", text, re.M), file


def test_only_the_model_comparison_imports_torch():
    """The reader and the static pass never import torch, not even inside a function."""
    importers = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "torch" or n.startswith("torch.") for n in names):
                importers.add(module)
    assert importers == {"ckptlint.verify.compare"}


def test_the_documented_file_context_api_exists():
    """Every FileContext name docs/architecture.md lists is one a real file's context has, so a
    rule author who follows the page gets no AttributeError."""
    import libcst as cst

    from ckptlint.engine.context import FileContext

    rows = [ln.split("|")[2] for ln in (ROOT / "docs" / "architecture.md").read_text().splitlines()
            if ln.startswith("| ") and not ln.startswith("| `") and ln.count("|") >= 3]
    # what the Scope and Binding objects hold is listed in parentheses: not the context's
    rows = [re.sub(r"\(a `(Scope|Binding)`[^)]*\)", "", row) for row in rows]
    names = {m for row in rows for m in re.findall(r"`([a-z_]+)(?:[.(][^`]*)?`", row)}
    assert {"calls_to", "scope_of", "binding_of", "report", "add_keyword", "path", "lines"} <= names
    text = "import torch\ntorch.load('x')\n"
    ctx = FileContext("x.py", text, cst.parse_module(text), settings({}))
    assert sorted(n for n in names if not hasattr(ctx, n)) == []
