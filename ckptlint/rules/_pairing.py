"""Pairing `torch.save` and `torch.load` sites of one path across the project's files, for
CKPT010 (a format mismatch), and for the messages of CKPT001 (which readers change with a
save) and CKPT002/003 (where a file loaded here is written as a whole model).

Sites come from the project index (analysis/sites.py); a CST call is matched to its site by
line and by its rank among the save/load calls of that line, as the index counts them."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ckptlint.analysis.library import from_pretrained_kind


def usable(path: str) -> bool:
    # imported here: the registry imports the rule modules on every run, warm ones included
    from ckptlint.analysis.sites import usable

    return usable(path)


def site_path(view, key) -> Optional[str]:
    """The path a site's key stands for (a constant's value), when it can pair."""
    if key is None:
        return None
    kind, value = key
    if kind == "ref":
        value = view.constant(value)
    return value if value is not None and usable(value) else None


def _saved_kind(view, obj, from_path: str) -> Optional[str]:
    """"state_dict" / "module" for a sites.describe_value result, None when unknown."""
    if obj is None or obj[0] in ("?", "object"):
        return None
    if obj[0] in ("state_dict", "module"):
        return obj[0]
    if obj[0] == "attrs":
        return view.chain_kind(obj[1], obj[2])
    qname = obj[1]
    if qname.endswith(".from_pretrained"):
        return from_pretrained_kind(qname.rsplit(".", 1)[0])
    kind = view.class_kind(qname, from_path)
    return "module" if kind == "module" else None


def save_sites(view) -> Dict[str, List[Tuple[str, str, int]]]:
    """{path: [(kind, file, line), ...]} of the saves whose content is known, project-wide
    (once per linted file: CKPT002/003 ask it for every load they report)."""
    return view.derived("save_sites", lambda: _save_sites(view))


def _save_sites(view) -> Dict[str, List[Tuple[str, str, int]]]:
    out: Dict[str, List[Tuple[str, str, int]]] = {}
    for _, entry in view.entries("saves"):
        for s in entry["saves"]:
            path = site_path(view, s["path"])
            kind = _saved_kind(view, s["obj"], entry["path"]) if path else None
            if kind is not None:
                out.setdefault(path, []).append((kind, entry["path"], s["line"]))
    return out


def load_sites(view, path: str) -> List[Tuple[str, dict]]:
    """(file, site) of every load of `path` in the project."""
    return [(entry["path"], s) for _, entry in view.entries("loads") for s in entry["loads"]
            if site_path(view, s["path"]) == path]


def site_of(ctx, call, kind: str) -> Optional[dict]:
    """The index's record of this `torch.save` / `torch.load` call (kind "saves" / "loads")."""
    current = ctx.project.current
    if not current or not current[kind]:
        return None
    return ctx.project.derived("sites_by_call", lambda: _sites_by_call(ctx, current)).get((call, kind))


def _sites_by_call(ctx, current) -> Dict[tuple, dict]:
    """{(call, kind): site} for the file's save and load calls: a call's site is the one on
    its line whose ordinal is the call's rank, by column, among that line's calls (the
    index counts them so). One pass over the calls, once per file."""
    rows: Dict[int, list] = {}
    for c in ctx.calls_to("torch.save", "torch.load"):
        start = ctx.start(c)
        rows.setdefault(start.row, []).append((start.column, c))
    sites = {(kind, s["line"], s["ordinal"]): s for kind in ("saves", "loads") for s in reversed(current[kind])}
    out: Dict[tuple, dict] = {}
    for row, calls in rows.items():
        calls.sort(key=lambda p: p[0])
        for ordinal, (_, c) in enumerate(calls):
            for kind in ("saves", "loads"):
                site = sites.get((kind, row, ordinal))
                if site is not None:
                    out[(c, kind)] = site
    return out


def dict_saves_with_objects(view, keys) -> List[Tuple[str, int, str, str]]:
    """(file, line, key, what it holds) of the project's saves of a dict that has every entry
    in `keys` and a pickled object among its entries (an nn.Module, or the run's config
    object: `"args": self.args`): a load reading those entries likely reads such a file,
    whatever path it names (yolov5's resume reads `["opt"]` of the checkpoint whose `"model"`
    is a pickled model; timm's EMA loader reads `["state_dict_ema"]` of one with `args`)."""
    wanted = set(keys)
    out = []
    if not wanted:
        return out
    for _, entry in view.entries("saves"):
        for s in entry["saves"]:
            entries = s.get("entries") or {}
            if not wanted <= set(entries):
                continue
            for k, obj in entries.items():
                if obj is not None and obj[0] == "object":
                    out.append((entry["path"], s["line"], k, f"a pickled object (`{obj[1]}`)"))
                    break
                if _saved_kind(view, obj, entry["path"]) == "module":
                    out.append((entry["path"], s["line"], k, "a pickled module"))
                    break
    return sorted(out, key=lambda o: o[0] != view.rel_path)  # a save in the same file first


def module_readers(view, keys) -> List[Tuple[str, int, str]]:
    """(file, line, key) of the project's uses of an entry named in `keys` as a module
    (`attempt_load`: `(ckpt.get("ema") or ckpt["model"]).fuse()`, also on a dict a helper
    returned): turning that entry into a state dict where it is saved would break them,
    whatever path they read."""
    wanted = set(keys)
    return [(entry["path"], line, k) for _, entry in view.entries("loads")
            for k, line in entry.get("module_entries") or () if k in wanted]


def where(view, file: str, line: int) -> str:
    """`train.py:44`: the file's name alone when it is the linted file, else its path."""
    return f"{file.rsplit('/', 1)[-1] if file == view.rel_path else file}:{line}"
