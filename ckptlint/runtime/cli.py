"""``verify`` command line until the shared CLI wires ``ckptlint verify`` to :func:`run`.

    python -m ckptlint.runtime.cli verify [FILES...] [--config F]
                                          [--output-format text|json] [--exit-zero]

Exit codes: 0 clean, 1 diagnostics, 2 usage/configuration/internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import sys
from typing import List, Optional

from ckptlint.errors import ConfigError, UsageError

try:
    import tomllib  # type: ignore[import-not-found]
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit; we want one line and code 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ckptlint verify", description="check checkpoint files (runtime phase)")
    p.add_argument("files", nargs="*", help="check only these files, with no model")
    p.add_argument("--config", help="pyproject.toml to read (default: the nearest one)")
    p.add_argument("--output-format", choices=("text", "json"), default="text")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    return p


def find_config(start: pathlib.Path) -> Optional[pathlib.Path]:
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: Optional[pathlib.Path]) -> dict:
    if config is None:
        return {}
    try:
        with open(config, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(config, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(config, f"invalid TOML: {exc}") from None
    tool = data.get("tool", {}).get("ckptlint", {})
    if not isinstance(tool, dict):
        raise ConfigError(config, "must be a table", key="tool.ckptlint")
    settings = dict(tool)
    if "torch-version" not in settings:
        settings["torch-version"] = _torch_floor(data.get("project", {}).get("dependencies", []))
    return settings


def _torch_floor(deps) -> Optional[str]:
    for dep in deps if isinstance(deps, list) else []:
        m = re.match(r"\s*torch\s*(\[[^\]]*\])?\s*([^;]*)", str(dep))
        if m and not re.match(r"\s*torch[\w-]", str(dep)):
            low = re.search(r"(>=|==|~=)\s*([\d.]+)", m.group(2))
            return low.group(2) if low else None
    return None


def run(argv: List[str]) -> int:
    """Arguments after `verify` (a leading `verify` is accepted too). Returns the exit code."""
    from ckptlint.runtime.runner import parse_entries, verify

    fmt = "text"
    try:
        if argv and argv[0] == "verify":  # `python -m ckptlint.runtime.cli verify ...`
            argv = argv[1:]
        args = _parser().parse_args(argv)
        fmt = args.output_format
        if args.config:
            config = pathlib.Path(args.config).resolve()
            if not config.is_file():
                raise UsageError(f"config file not found: {args.config}")
        else:
            config = find_config(pathlib.Path.cwd())
        settings = load_settings(config)
        safe = settings.get("safe-globals", [])
        if not isinstance(safe, list) or not all(isinstance(s, str) for s in safe):
            raise ConfigError(config, "expected a list of strings", key="safe-globals")
        tv = settings.get("torch-version")
        if tv is not None and not isinstance(tv, str):
            raise ConfigError(config, "expected a string like \"2.1\"", key="torch-version")
        entries = [] if args.files else parse_entries(settings.get("checkpoints"), config)
        root = config.parent if config else pathlib.Path.cwd()
        if not args.files and not entries:
            print("ckptlint verify: no files given and no [[tool.ckptlint.checkpoints]] configured",
                  file=sys.stderr)
        diags, notes = verify(entries, args.files, root=root, torch_version=tv, safe_globals=safe)
    except (UsageError, ConfigError) as exc:
        print(f"ckptlint: error: {exc}", file=sys.stderr)
        if fmt == "json":
            print("[]")
        return 2
    except Exception as exc:  # noqa: BLE001 - internal error: one line, no traceback
        print(f"ckptlint: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if fmt == "json":
            print("[]")
        return 2
    if fmt == "json":
        print(json.dumps([d.to_json() for d in diags], indent=2))
    else:
        for note in notes:
            print(note, file=sys.stderr)
        for d in diags:
            print(f"{_display(d.filename)}: {d.code} {d.message}")
        n = len(diags)
        print("All checks passed!" if n == 0 else f"Found {n} error{'s' if n != 1 else ''}.")
    if diags and not args.exit_zero:
        return 1
    return 0


def _display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def main() -> int:
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
