"""The one finding type. Every output format (text, JSON, SARIF, GitHub, LSP) is a view of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple


# The project's web home: where its docs/ are published, e.g. "https://ckptlint.example/docs/"
# (a rule's page is then WEB_HOME + "rules/CKPT002.md"). None while it has none: outputs that
# travel (JSON `url`, SARIF `helpUri`) then carry no link at all, since the page in the
# installed package is a path of the machine that ran the check (OUTPUT.md).
WEB_HOME: Optional[str] = None


def doc_page(code: str) -> Optional[str]:
    """The page of ckptlint's docs/ about a code: its rule page, or errors.md for E9xx."""
    if code.startswith("CKPT"):
        return f"rules/{code}.md"
    if code.startswith("E9"):
        return "errors.md"
    return None


def web_url(page: str) -> Optional[str]:
    return WEB_HOME.rstrip("/") + "/" + page if WEB_HOME else None


@lru_cache(maxsize=None)
def local_page(page: str) -> Optional[Path]:
    """A page of the docs this ckptlint ships ("rules/CKPT002.md"), None without it (or for
    ""). A wheel holds docs/ as ckptlint/docs; a clone (an editable install, PYTHONPATH) has
    it beside the package. It always matches the version that made the finding."""
    here = Path(__file__).resolve().parent
    for docs in (here / "docs", here.parent / "docs"):
        if page and (docs / page).is_file():
            return docs / page
    return None


def shareable(url: Optional[str]) -> Optional[str]:
    """A link fit for an output read elsewhere: not a `file:` one (a plugin may name one)."""
    return url if url and not url.startswith("file:") else None


# A message is a headline a person scans: what is wrong, here (OUTPUT.md); the rest is help.
HEADLINE = 100

SAFE = "safe"
UNSAFE = "unsafe"


@dataclass(frozen=True, order=True)
class Location:
    """1-based row, 1-based column counted in Unicode code points (like ruff)."""

    row: int
    column: int

    def to_json(self) -> dict:
        return {"row": self.row, "column": self.column}


@dataclass(frozen=True)
class Edit:
    """Replace [start, end) with content. Positions use the diagnostic's coordinates."""

    start: Location
    end: Location
    content: str

    def to_json(self) -> dict:
        return {
            "content": self.content,
            "location": self.start.to_json(),
            "end_location": self.end.to_json(),
        }


@dataclass(frozen=True)
class Fix:
    """A change that removes the finding, and whether applying it is safe."""

    applicability: str  # SAFE or UNSAFE
    message: str
    edits: Tuple[Edit, ...]

    def applies(self, unsafe_fixes: bool) -> bool:
        return self.applicability == SAFE or unsafe_fixes

    def to_json(self) -> dict:
        return {
            "applicability": self.applicability,
            "message": self.message,
            "edits": [e.to_json() for e in self.edits],
        }


@dataclass
class Diagnostic:
    """A finding, or a file that could not be checked (see OUTPUT.md for its views)."""

    code: str
    name: str
    message: str
    filename: str  # absolute path
    location: Optional[Location] = None
    end_location: Optional[Location] = None
    fix: Optional[Fix] = None
    noqa_row: Optional[int] = None
    # runtime findings: the state-dict key concerned (None when not about one key)
    key: Optional[str] = None
    is_runtime: bool = False
    # notebooks: 1-based cell index; rows are then relative to the cell
    cell: Optional[int] = None
    # "error" or "warning"; formats that know levels (SARIF, GitHub, LSP) read it
    severity: str = "error"
    extra: dict = field(default_factory=dict)
    # the why and the how, for a person who wants more than the headline in `message`
    # (at most HEADLINE characters); None when the headline says it all
    help: Optional[str] = None

    @property
    def url(self) -> Optional[str]:
        """The rule's page on the web, for outputs read elsewhere (JSON, SARIF): a plugin
        rule's own `docs_url` (in `extra`), or ckptlint's page under WEB_HOME; None without
        one. Never a path of this machine."""
        if self.extra.get("url"):
            return shareable(self.extra["url"])
        page = doc_page(self.code)
        return web_url(page) if page else None

    @property
    def local_url(self) -> Optional[str]:
        """A link for a reader on this machine (an editor): the web page, else the `file:`
        URI of the page in the docs this ckptlint ships."""
        if self.url or self.extra.get("url"):
            return self.url or self.extra["url"]
        found = local_page(doc_page(self.code) or "")
        return found.as_uri() if found else None

    def sort_key(self):
        loc = self.location or Location(0, 0)
        return (self.filename, self.cell or 0, loc.row, loc.column, self.code, self.message)

    def to_json(self) -> dict:
        out = {
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "filename": self.filename,
            "location": self.location.to_json() if self.location else None,
            "end_location": self.end_location.to_json() if self.end_location else None,
            "noqa_row": self.noqa_row,
            "fix": self.fix.to_json() if self.fix else None,
            "help": self.help,
            "url": self.url,
            "severity": self.severity,
        }
        if self.is_runtime:
            out["key"] = self.key
        if self.cell is not None:
            out["cell"] = self.cell
        return out


# The diagnostics that say a file could not be checked (docs/errors.md): (code, name).
IO_ERROR = ("E902", "io-error")
SYNTAX_ERROR = ("E999", "syntax-error")
INTERNAL_ERROR = ("E998", "internal-error")
FIX_ERROR = ("E997", "fix-error")
TOO_LARGE = ("E903", "file-too-large")
TOO_DEEP = ("E904", "too-deeply-nested")
# verify: a configured model could not be imported, built or compared with (docs/runtime.md)
MODEL_ERROR = ("E910", "model-error")


def fit_headline(message: str, help: Optional[str]) -> Tuple[str, Optional[str]]:
    """(headline, help) within the contract: a message longer than HEADLINE (a plugin's, or
    a name longer than a rule planned for) is cut at a word with `…`, and the whole message
    leads the help, so nothing it said is lost."""
    if len(message) <= HEADLINE:
        return message, help
    cut = message[: HEADLINE - 1]
    if " " in cut[HEADLINE // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…", message + (f"\n\n{help}" if help else "")


def split_headline(text: str, prefix: str = "") -> Tuple[str, Optional[str]]:
    """(headline, help) for a sentence composed elsewhere (a reader's problem, "what: why;
    what to do"): `prefix + text` when it fits, else `text` (the prefix says what the rule's
    name says), else the longest lead of it that ends before a `: `, `; ` or ` (` and fits,
    with the whole text as the help. Such sentences lead with their conclusion."""
    if len(prefix) + len(text) <= HEADLINE:
        return prefix + text, None
    if len(text) <= HEADLINE:
        return text, None
    cuts = [i for sep in (": ", "; ", " (") for i in _find_all(text, sep) if len(prefix) + i <= HEADLINE]
    whole = text[:1].upper() + text[1:]
    if not cuts:
        return fit_headline(prefix + text, None)[0], whole
    return prefix + text[: max(cuts)], whole


def _find_all(text: str, sep: str):
    i = text.find(sep)
    while i > 0:
        yield i
        i = text.find(sep, i + 1)


def file_error(code_name, path: str, message: str, row: Optional[int] = None,
               col: Optional[int] = None, help: Optional[str] = None) -> Diagnostic:
    """One of the E9xx diagnostics above, at (row, col) or else at the top of the file."""
    loc = Location(row, col) if row is not None else Location(1, 1)
    message, help = fit_headline(message, help)
    return Diagnostic(
        code=code_name[0], name=code_name[1], message=message, filename=path,
        location=loc, end_location=loc, noqa_row=loc.row, help=help,
    )
