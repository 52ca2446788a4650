"""GitHub Actions workflow commands: `::error file=...,line=...::message`, one per finding,
escaped the way @actions/core escapes them (so `%`, CR, LF, `:` and `,` survive). The
annotation's first line is the headline; the help follows it after a blank line."""

from __future__ import annotations

from ckptlint.output._paths import repo_relative


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def line(d, report) -> str:
    level = "error" if d.severity == "error" else "warning"
    props = [("file", repo_relative(d.filename, report.cwd))]
    if d.location is not None:
        end = d.end_location or d.location
        props += [("line", d.location.row), ("endLine", end.row),
                  ("col", d.location.column), ("endColumn", end.column)]
    props.append(("title", f"ckptlint ({d.code})"))
    where = f"cell {d.cell}: " if d.cell is not None else ""
    body = ",".join(f"{k}={escape_property(str(v))}" for k, v in props)
    said = f"{where}{d.code} {d.message}" + (f"\n\n{d.help}" if d.help else "")
    return f"::{level} {body}::{escape_data(said)}"


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    return "".join(line(d, report) + "\n" for d in ordered)
