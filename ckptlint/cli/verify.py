"""`ckptlint verify [FILES...]`: the runtime phase on the command line.

Settings and output formats are the static pass's own (`ckptlint.workspace.config`, `ckptlint.output`),
so `verify` reads the same `[tool.ckptlint]` and prints the same text/JSON/SARIF/... views.
Exit codes: 0 clean, 1 diagnostics, 2 usage/configuration/internal error.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import List, Optional, Tuple

from ckptlint.errors import ConfigError, PluginError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit; we want one line and code 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    from ckptlint.output import FORMATS

    p = _Parser(prog="ckptlint verify", description="check checkpoint files (runtime phase)")
    p.add_argument("files", nargs="*", help="check only these files (a folder: the checkpoint and "
                   "pickle files below it, judged by content), with no model")
    p.add_argument("--pre-commit", action="store_true",
                   help="for the pre-commit hook: check the named files that are checkpoints or pickles "
                   "by content (skipping the rest) and the configured [[tool.ckptlint.checkpoints]]")
    p.add_argument("--config", help="pyproject.toml to read (default: the nearest one)")
    p.add_argument("--output-format", choices=sorted(FORMATS), default="text")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also say, for each URL read, how many bytes were fetched")
    p.add_argument("--timeout", type=_positive, default=60.0, metavar="SECONDS",
                   help="URLs: how long one request may wait for the server (default: 60)")
    p.add_argument("--max-fetch", type=_positive, default=256, metavar="MIB",
                   help="URLs: the most one file may fetch, in MiB; past it the file is not checked (default: 256)")
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got `{text}`") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got `{text}`")
    return value


def load_settings(config: Optional[str], cwd: pathlib.Path, workspace=None):
    """The settings that govern the current folder (or the --config file), as `check` reads them;
    `workspace`: one that has read them already (a `check` run's)."""
    from ckptlint.workspace.workspace import Workspace

    if config and not pathlib.Path(config).is_file():
        raise UsageError(f"config file not found: {config}")
    return (workspace or Workspace(cwd, config)).config_settings(cwd)


def checkpoint_diagnostics(settings, files: Optional[List[str]] = None,
                           pre_commit: bool = False, verbose: bool = False) -> Tuple[list, List[str]]:
    """Verify `files` on their own, or else the configured `[[tool.ckptlint.checkpoints]]`;
    `pre_commit`: both, the files judged by content. Rules switched off by the selection
    (`ignore = ["CKPT108"]`) are dropped."""
    from ckptlint.versions import format_version
    from ckptlint.verify import parse_entries, verify

    configured = pre_commit or not files
    entries = parse_entries(settings.checkpoints or None, settings.config_file) if configured else []
    tv = format_version(settings.torch_version) if settings.torch_version else None
    diags, notes = verify(entries, files or None, root=settings.root, torch_version=tv,
                          safe_globals=list(settings.safe_globals), sniff_files=pre_commit, verbose=verbose)
    enabled = set(settings.enabled_codes())
    return [d for d in diags if not d.code.startswith("CKPT") or d.code in enabled], notes


def run(argv: List[str]) -> int:
    """Arguments after `verify`. Returns the exit code."""
    from ckptlint.output import HUMAN, Report, renderer

    fmt = "text"
    cwd = pathlib.Path.cwd()
    try:
        args = _parser().parse_args(argv)
        fmt = args.output_format
        settings = load_settings(args.config, cwd)
        if not args.files and not settings.checkpoints and not args.pre_commit:
            return _nothing_to_verify(fmt, settings)
        from ckptlint.reader import source

        source.SETTINGS.timeout, source.SETTINGS.max_fetch = args.timeout, int(args.max_fetch * (1 << 20))
        diags, notes = checkpoint_diagnostics(settings, args.files, args.pre_commit, args.verbose)
        report = Report(cwd=cwd, quiet=args.quiet, codes=settings.enabled_codes())
        out = renderer(fmt)(diags, report)
    except (UsageError, ConfigError, PluginError) as exc:
        return _fail(f"ckptlint: error: {exc}", fmt)
    except Exception as exc:  # noqa: BLE001 - internal error: one line, no traceback
        return _fail(f"ckptlint: internal error: {type(exc).__name__}: {exc}", fmt)
    if fmt in HUMAN:
        for note in notes:
            print(note, file=sys.stderr)
    sys.stdout.write(out)
    if diags and not args.exit_zero:
        return 1
    return 0


def _nothing_to_verify(fmt: str, settings) -> int:
    """No files and no configured checkpoints: say so instead of "All checks passed!"."""
    from ckptlint.output import HUMAN

    where = settings.config_file or "pyproject.toml"
    message = ("Nothing to verify: no files were given and no checkpoints are declared in "
               f"{where}.\nPass files or folders (`ckptlint verify weights/`), or declare them:\n\n"
               "  [[tool.ckptlint.checkpoints]]\n  path = \"weights/model.pt\"\n\n"
               "(see docs/runtime.md, or `ckptlint verify --help`)")
    if fmt == "json":
        print("[]")
    if fmt in HUMAN:
        print(message)
    else:
        print(message, file=sys.stderr)
    return 0


def _fail(message: str, fmt: str) -> int:
    print(message, file=sys.stderr)
    if fmt == "json":  # stdout stays one JSON array, even when nothing could be checked
        print("[]")
    return 2


def main() -> int:
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
