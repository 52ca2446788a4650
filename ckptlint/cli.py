"""The `ckptlint` command: `check` (default), `rule`, `verify`, `server`."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import List, Optional

from ckptlint import __version__
from ckptlint.errors import ConfigError, UsageError

SUBCOMMANDS = ("check", "rule", "verify", "server")
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: exit 2, one line, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"ckptlint: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from ckptlint.output import FORMATS

    parser = _Parser(prog="ckptlint", description="Lint PyTorch checkpoint code and files.")
    parser.add_argument("--version", action="version", version=f"ckptlint {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = sub.add_parser("check", help="lint Python files (the default command)")
    check.add_argument("paths", nargs="*", default=None, metavar="PATH")
    check.add_argument("--fix", action="store_true", help="apply safe fixes")
    check.add_argument("--unsafe-fixes", action="store_true", help="also apply (and mark) unsafe fixes")
    check.add_argument("--diff", action="store_true", help="print a diff of what --fix would write; write nothing")
    check.add_argument("--select", type=_codes, help="rule codes or prefixes to enable (replaces the config)")
    check.add_argument("--extend-select", type=_codes, default=[], help="codes or prefixes to enable as well")
    check.add_argument("--ignore", type=_codes, default=[], help="codes or prefixes to disable")
    check.add_argument("--output-format", choices=sorted(FORMATS), default="text")
    check.add_argument("--statistics", action="store_true", help="count findings per rule")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    check.add_argument("--config", metavar="FILE", help="read settings from this pyproject-shaped file")
    check.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    check.add_argument("--show-fixes", action="store_true", help="list the fixes that were applied")
    check.add_argument("--force-exclude", action="store_true", help="apply excludes to files named explicitly")
    check.add_argument("--runtime", action="store_true", help="also verify the configured checkpoints")
    check.add_argument("--add-noqa", action="store_true", help="append `# noqa: CODE` to every line with a finding")
    check.add_argument("--ignore-noqa", action="store_true", help="report findings even where `# noqa` hides them")

    rule = sub.add_parser("rule", help="explain a rule")
    rule.add_argument("code", nargs="?")
    rule.add_argument("--all", action="store_true", help="list every rule")
    rule.add_argument("--output-format", choices=("text", "json"), default="text")

    verify = sub.add_parser("verify", help="check checkpoint files (runtime phase)", add_help=False)
    verify.add_argument("rest", nargs=argparse.REMAINDER)

    server = sub.add_parser("server", help="run the language server over stdio")
    server.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "check")
    if argv[0] == "verify":
        return _run_verify(argv[1:])
    if argv[0] == "server":
        from ckptlint.lsp_entry import main as server_main

        return server_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "rule":
            return _run_rule(args)
        return run_check(args)
    except (UsageError, ConfigError) as exc:
        print(f"ckptlint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ckptlint: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for users; CKPTLINT_DEBUG=1 shows it
        if os.environ.get("CKPTLINT_DEBUG"):
            raise
        print(f"ckptlint: internal error: {type(exc).__name__}: {exc} (set CKPTLINT_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_ERROR


def _run_verify(rest: List[str]) -> int:
    try:
        from ckptlint.runtime.cli import run
    except ImportError as exc:  # pragma: no cover - the subpackage ships with ckptlint
        print(f"ckptlint: error: the runtime phase is unavailable: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return run(rest)


def _run_rule(args) -> int:
    from ckptlint.docs import rule_listing, rule_markdown
    from ckptlint.registry import get_rule

    if args.all or not args.code:
        print(rule_listing(args.output_format), end="")
        return EXIT_OK
    rule = get_rule(args.code)
    if rule is None:
        raise UsageError(f"unknown rule `{args.code}` (see `ckptlint rule --all`)")
    if args.output_format == "json":
        import json

        from ckptlint.docs import rule_json

        print(json.dumps(rule_json(rule), indent=2))
    else:
        print(rule_markdown(rule), end="")
    return EXIT_OK


def run_check(args) -> int:
    from ckptlint.output import Report, renderer
    from ckptlint.runner import Options, run
    from ckptlint.selection import check_selectors

    cwd = Path.cwd()
    for sel in (args.select or []) + args.extend_select + args.ignore:
        check_selectors([sel])
    options = Options(
        paths=args.paths or ["."], fix=args.fix, unsafe_fixes=args.unsafe_fixes, diff=args.diff,
        select=args.select, extend_select=args.extend_select, ignore=args.ignore,
        config=args.config, force_exclude=args.force_exclude, ignore_noqa=args.ignore_noqa,
    )
    if args.add_noqa:
        if args.fix or args.diff:
            raise UsageError("--add-noqa cannot be combined with --fix or --diff")
        from ckptlint.noqa_cli import run_add_noqa

        return run_add_noqa(options, cwd)
    result = run(options, cwd)
    if args.diff:
        sys.stdout.write("".join(_unified_diff(r, cwd) for r in result.changed))
        n = len(result.applied)
        print(f"Would fix {n} error{'s' if n != 1 else ''}." if n else "No errors would be fixed.", file=sys.stderr)
        return EXIT_FINDINGS if n else EXIT_OK
    diagnostics = result.diagnostics + _runtime_diagnostics(args, cwd)
    report = Report(
        cwd=cwd, fix=args.fix, unsafe_fixes=args.unsafe_fixes, fixed_count=len(result.applied),
        show_fixes=args.show_fixes, statistics=args.statistics, quiet=args.quiet,
        applied=result.applied, files_checked=result.files_checked, codes=result.codes,
    )
    sys.stdout.write(renderer(args.output_format)(diagnostics, report))
    if diagnostics and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _runtime_diagnostics(args, cwd: Path) -> list:
    """`check --runtime` (or `runtime = true`): the configured checkpoints in the same report."""
    from ckptlint.runtime.cli import checkpoint_diagnostics, load_settings

    try:
        settings = load_settings(args.config, cwd)
    except ConfigError:
        if args.runtime:
            raise
        return []  # a broken config elsewhere only matters when it was asked for
    if not (args.runtime or settings.runtime):
        return []
    diags, notes = checkpoint_diagnostics(settings)
    if args.output_format in ("text", "concise"):
        for note in notes:
            print(note, file=sys.stderr)
    return diags


def _unified_diff(result, cwd: Path) -> str:
    from ckptlint.output.text import display_path

    name = display_path(result.path, cwd)
    lines = difflib.unified_diff(
        result.original.splitlines(keepends=True),
        result.fixed.splitlines(keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}",
    )
    out = "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in lines)
    return out
