"""The `ckptlint` command: `check` (default), `rule`, `verify`, `server`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from ckptlint import __version__
from ckptlint.errors import ConfigError, PluginError, UsageError
from ckptlint.lazy import defer

# dataclasses imports inspect (with ast, dis, tokenize: ~5 ms of start-up) for one call it
# makes only for a class without a docstring; every dataclass here has one
defer("inspect")

SUBCOMMANDS = ("check", "rule", "verify", "server")
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _codes(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of jobs, got {value!r}")
    return n


def _output_format(value: str) -> str:
    from ckptlint.output import FORMATS

    if value == "concise":  # ruff's name for the one-line form, which `text` already is
        raise argparse.ArgumentTypeError("`concise` is gone: `text` (the default) is ruff's concise form, one line per finding")
    if value not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown format {value!r} (choose from {', '.join(sorted(FORMATS))})")
    return value


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil (start-up time)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but the width comes from _terminal_columns: argparse makes a formatter for
    every argument added, and its own asks shutil for the width."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

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
    check.add_argument("--output-format", type=_output_format, default="text",
                       metavar="{" + ",".join(sorted(FORMATS)) + "}")
    check.add_argument("--statistics", action="store_true", help="count findings per rule")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings remain")
    check.add_argument("--config", metavar="FILE", help="read settings from this pyproject-shaped file")
    check.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    check.add_argument("--show-fixes", action="store_true", help="list the fixes that were applied")
    check.add_argument("--force-exclude", action="store_true", help="apply excludes to files named explicitly")
    check.add_argument("--show-files", action="store_true",
                       help="list the files a run would check, and what it skips and why; check nothing")
    check.add_argument("--runtime", action="store_true", help="also verify the configured checkpoints")
    check.add_argument("--add-noqa", action="store_true", help="append `# noqa: CODE` to every line with a finding")
    check.add_argument("--ignore-noqa", action="store_true", help="report findings even where `# noqa` hides them")
    check.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                       help="worker processes (default: every available CPU)")
    check.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    check.add_argument("--cache-dir", metavar="DIR",
                       help="where the cache lives (default: .ckptlint_cache in the project root; "
                            "also $CKPTLINT_CACHE_DIR or `cache-dir` in the config)")

    rule = sub.add_parser("rule", help="explain a rule")
    rule.add_argument("code", nargs="?")
    rule.add_argument("--all", action="store_true", help="list every rule")
    rule.add_argument("--output-format", choices=("text", "json"), default="text")

    verify = sub.add_parser("verify", help="check checkpoint files (runtime phase)", add_help=False)
    verify.add_argument("rest", nargs=argparse.REMAINDER)

    server = sub.add_parser("server", help="run the language server over stdio")
    server.add_argument("rest", nargs=argparse.REMAINDER)
    parser.commands = {"check": check, "rule": rule}  # to report an unknown option with its command's usage
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and _typo_command(argv[0]):
        import difflib

        near = difflib.get_close_matches(argv[0], SUBCOMMANDS, n=1)
        hint = f"; did you mean `ckptlint {near[0]}`?" if near else ""
        print(f"ckptlint: error: `{argv[0]}` is neither a command ({', '.join(SUBCOMMANDS)}) "
              f"nor a file or folder{hint}", file=sys.stderr)
        return EXIT_ERROR
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "check")
    if argv[0] == "verify":
        return _run_verify(argv[1:])
    if argv[0] == "server":
        from ckptlint.cli.server import main as server_main

        return server_main(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "rule":
            return _run_rule(args)
        return run_check(args)
    except (UsageError, ConfigError, PluginError) as exc:
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


def _typo_command(word: str) -> bool:
    """`ckptlint frob`: a bare word that is no command and names nothing on disk is a
    mistyped command, not a path to lint (a missing `x.py` or `src/` is still reported as
    a missing path)."""
    return (word not in SUBCOMMANDS and word.isidentifier() and not word.startswith("-")
            and not os.path.lexists(word))


def _run_verify(rest: List[str]) -> int:
    try:
        from ckptlint.cli.verify import run
    except ImportError as exc:  # pragma: no cover - the subpackage ships with ckptlint
        print(f"ckptlint: error: the runtime phase is unavailable: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return run(rest)


def _run_rule(args) -> int:
    from ckptlint.output.rule_docs import rule_listing, rule_markdown
    from ckptlint.rules import get_rule

    if args.all or not args.code:
        print(rule_listing(args.output_format), end="")
        return EXIT_OK
    rule = get_rule(args.code)
    if rule is None:
        raise UsageError(f"unknown rule `{args.code}` (see `ckptlint rule --all`)")
    if args.output_format == "json":
        import json

        from ckptlint.output.rule_docs import rule_json

        print(json.dumps(rule_json(rule), indent=2))
    else:
        print(rule_markdown(rule), end="")
    return EXIT_OK


def run_check(args) -> int:
    from ckptlint.output import HUMAN, Report, renderer
    from ckptlint.workspace.run import Options, run
    from ckptlint.workspace.selection import check_selectors, opt_in_note

    cwd = Path.cwd()
    for sel in (args.select or []) + args.extend_select + args.ignore:
        check_selectors([sel])
    note = opt_in_note((args.select or []) + args.extend_select, args.ignore)
    if note and not args.quiet:
        print(note, file=sys.stderr)
    options = Options(
        paths=args.paths or ["."], fix=args.fix, unsafe_fixes=args.unsafe_fixes, diff=args.diff,
        select=args.select, extend_select=args.extend_select, ignore=args.ignore,
        config=args.config, force_exclude=args.force_exclude, ignore_noqa=args.ignore_noqa,
        jobs=args.jobs, cache=not args.no_cache, cache_dir=args.cache_dir,
    )
    if args.show_files:
        return _show_files(options, cwd)
    if args.add_noqa:
        if args.fix or args.diff:
            raise UsageError("--add-noqa cannot be combined with --fix or --diff")
        from ckptlint.cli.noqa import run_add_noqa

        return run_add_noqa(options, cwd)
    progress = None
    if args.output_format in HUMAN and not args.diff and _stderr_is_tty():
        from ckptlint.cli.progress import Progress

        progress = options.progress = Progress(sys.stderr)
    try:
        result = run(options, cwd)
    finally:
        if progress is not None:
            progress.close()
    if args.diff:
        sys.stdout.write("".join(_unified_diff(r, cwd) for r in result.changed))
        n = len(result.applied)
        print(f"Would fix {n} error{'s' if n != 1 else ''}." if n else "No errors would be fixed.", file=sys.stderr)
        return EXIT_FINDINGS if n else EXIT_OK
    diagnostics = result.diagnostics + _runtime_diagnostics(args, cwd, result.workspace)
    report = Report(
        cwd=cwd, fix=args.fix, unsafe_fixes=args.unsafe_fixes, fixed_count=len(result.applied),
        show_fixes=args.show_fixes, statistics=args.statistics, quiet=args.quiet,
        applied=result.applied, files_checked=result.files_checked, codes=result.codes,
    )
    sys.stdout.write(renderer(args.output_format)(diagnostics, report))
    if diagnostics and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _show_files(options, cwd: Path) -> int:
    """ruff's `--show-files`: the files a run would check, one a line; then every folder or
    source file the walk left out, with the setting that left it out."""
    from ckptlint.output.text import display_path
    from ckptlint.workspace.run import workspace_for

    found = workspace_for(options, cwd).discover(options.paths or ["."], force_exclude=options.force_exclude)
    for path in found.files:
        print(display_path(os.path.abspath(path), cwd))
    if found.skipped:
        print(f"Skipped {len(found.skipped)} (not checked):")
        for path, why in found.skipped:
            slash = "/" if path.is_dir() else ""
            print(f"  {display_path(os.path.abspath(path), cwd)}{slash}  {why}")
    for path in found.missing:
        print(f"ckptlint: error: {display_path(os.path.abspath(path), cwd)}: No such file or directory", file=sys.stderr)
    return EXIT_ERROR if found.missing else EXIT_OK


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _runtime_diagnostics(args, cwd: Path, workspace=None) -> list:
    """`check --runtime` (or `runtime = true`): the configured checkpoints in the same report."""
    from ckptlint.cli.verify import checkpoint_diagnostics, load_settings
    from ckptlint.output import HUMAN

    try:
        settings = load_settings(args.config, cwd, workspace)
    except ConfigError:
        if args.runtime:
            raise
        return []  # a broken config elsewhere only matters when it was asked for
    if not (args.runtime or settings.runtime):
        return []
    diags, notes = checkpoint_diagnostics(settings)
    if args.output_format in HUMAN:
        for note in notes:
            print(note, file=sys.stderr)
    return diags


def _unified_diff(result, cwd: Path) -> str:
    from ckptlint.output.text import display_path
    from ckptlint.engine.source import split_lines

    name = display_path(result.path, cwd)
    import difflib

    lines = difflib.unified_diff(
        split_lines(result.original, keepends=True),
        split_lines(result.fixed, keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}",
    )
    out = "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in lines)
    return out
