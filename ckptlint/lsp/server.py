"""`ckptlint server`: a language server over stdio (pygls 2).

Diagnostics on open/change/save (debounced, longer for longer files; linting runs in the
thread pool so the event loop keeps answering, and re-parses only the statements an edit
touched: lsp/incremental.py), quick fixes carrying each rule's fix, `source.fixAll.ckptlint`, and
"suppress with `# noqa`". Positions are sent in UTF-16 code units (see Protocol)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from ckptlint import __version__
from ckptlint.diagnostic import SAFE, Diagnostic
from ckptlint.lsp.documents import Documents
from ckptlint.lsp.engine import Engine
from ckptlint.lsp.incremental import Document
from ckptlint.lsp.positions import end_of, to_client
from ckptlint.engine.noqa_edit import add_noqa
from ckptlint.engine.source import LineIndex

FIX_ALL = "source.fixAll.ckptlint"
# seconds between the last change and its lint; unset, it grows with the file (debounce_for)
DEBOUNCE = float(os.environ["CKPTLINT_LSP_DEBOUNCE"]) if os.environ.get("CKPTLINT_LSP_DEBOUNCE") else None
log = logging.getLogger("ckptlint.lsp")


@dataclass
class Linted:
    """The last result published for a document, with the text it was computed on."""

    version: Optional[int]
    text: str
    findings: List[Diagnostic] = field(default_factory=list)
    published: List[types.Diagnostic] = field(default_factory=list)


class Protocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        # Always UTF-16, the encoding every client must support: positionEncoding then stays
        # absent and clients that never read it still get the right columns.
        if params.capabilities.general is not None:
            params.capabilities.general.position_encodings = None
        return (yield from super().lsp_initialize(params))

    # The documents' text is the server's own (lsp/documents.py): pygls' model breaks lines
    # where LSP does not. These replace pygls' handlers, then run the server's features.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        item = params.text_document
        self._server.documents.open(item.uri, item.language_id, item.version, item.text)
        yield from self._feature(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        self._server.documents.change(params.text_document.uri, params.text_document.version,
                                      params.content_changes, self._server.encoding)
        yield from self._feature(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        self._server.documents.close(params.text_document.uri)
        yield from self._feature(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _feature(self, method: str, params):
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None


class CkptlintServer(LanguageServer):
    def __init__(self):
        super().__init__("ckptlint", __version__, protocol_cls=Protocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.documents = Documents()  # the open documents' text (not pygls' workspace)
        self.results: Dict[str, Linted] = {}
        self.pending: Dict[str, asyncio.Task] = {}
        self.running: Dict[str, concurrent.futures.Future] = {}  # the lint in a worker, per document
        self.kept: Dict[str, Document] = {}  # what the next lint of each document can reuse
        self.config_problems: set = set()  # shown once each, not on every keystroke
        self._engine: Optional[Engine] = None
        self.selection: dict = {}  # --select, --ignore, ... (main): over every file's config

    @property
    def engine(self) -> Engine:
        """Made on the first lint, once the client has said where the workspace is."""
        if self._engine is None:
            self._engine = Engine(self.root, **self.selection)
        return self._engine

    # --- helpers ------------------------------------------------------------------------------
    @property
    def encoding(self) -> str:
        enc = self.server_capabilities.position_encoding or types.PositionEncodingKind.Utf16
        return getattr(enc, "value", enc)

    @property
    def root(self) -> Optional[str]:
        try:
            return self.workspace.root_path
        except Exception:  # no workspace folder
            return None

    def lsp_range(self, lines: LineIndex, start, end) -> types.Range:
        s = to_client(lines, start.row, start.column, self.encoding)
        e = to_client(lines, (end or start).row, (end or start).column, self.encoding)
        return types.Range(types.Position(*s), types.Position(*e))

    def to_lsp(self, d: Diagnostic, lines: LineIndex) -> types.Diagnostic:
        if d.location is None:
            rng = types.Range(types.Position(0, 0), types.Position(0, 0))
        else:
            rng = self.lsp_range(lines, d.location, d.end_location)
        return types.Diagnostic(
            range=rng,
            # the headline is the first line (what a problems list or inline text shows), the
            # help follows for the hover
            message=d.message + (f"\n\n{d.help}" if d.help else ""),
            severity=types.DiagnosticSeverity.Error if d.severity == "error" else types.DiagnosticSeverity.Warning,
            code=d.code,
            # read on this machine: the page in the installed docs will do when there is no web one
            code_description=types.CodeDescription(href=d.local_url) if d.local_url else None,
            source="ckptlint",
            data={"fix": d.fix.applicability if d.fix else None},
        )

    # --- linting ------------------------------------------------------------------------------
    def schedule(self, uri: str, delay: float) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.ensure_future(self._lint_later(uri, delay))

    async def _lint_later(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self.lint_now(uri)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # never take the server down over one document
            log.exception("linting %s failed", uri)
            self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"ckptlint: {exc!r}"))

    async def lint_now(self, uri: str) -> None:
        # One lint per document at a time. Cancelling a task does not stop the worker thread
        # it awaits, so without this every keystroke of a burst would start another lint
        # beside the stale ones, all sharing the GIL, and the last one would finish only
        # after all of them (seconds on a large file).
        while (running := self.running.get(uri)) is not None and not running.done():
            await _ended(running)
        doc = self.documents.get(uri)
        if doc is None or not _is_python(doc):
            return  # e.g. a pyproject.toml the client also synchronises
        text, version = doc.text, doc.version
        path = to_fs_path(uri) if uri.startswith("file:") else None
        kept = self.kept.setdefault(uri, Document())
        self.running[uri] = job = self.thread_pool.submit(self.engine.lint, path, text, False, kept)
        _, findings, problem = await asyncio.wrap_future(job)
        if self.running.get(uri) is job:
            del self.running[uri]
        current = self.documents.get(uri)
        if current is None or current.version != version or current.text != text:
            return  # edited meanwhile: a newer lint is on its way
        if problem and problem not in self.config_problems:
            self.config_problems.add(problem)
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"ckptlint: {problem}"))
        lines = LineIndex(text)
        published = [self.to_lsp(d, lines) for d in findings]
        self.results[uri] = Linted(version, text, findings, published)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=published, version=version)
        )

    def relint_all(self) -> None:
        self.engine.forget_settings()
        self.config_problems.clear()
        for uri in self.documents:
            self.schedule(uri, 0)

    # --- code actions -------------------------------------------------------------------------
    def actions(self, uri: str, params: types.CodeActionParams) -> List[types.CodeAction]:
        linted = self.results.get(uri)
        if linted is None:
            return []
        lines = LineIndex(linted.text)
        out = []
        for d, lsp in zip(linted.findings, linted.published):
            if not _overlaps(lsp.range, params.range):
                continue
            if d.fix is not None and d.fix.edits:
                unsafe = d.fix.applicability != SAFE
                title = f"ckptlint ({d.code}): {d.fix.message}" + (" (unsafe fix)" if unsafe else "")
                edits = [types.TextEdit(self.lsp_range(lines, e.start, e.end), e.content) for e in d.fix.edits]
                out.append(types.CodeAction(
                    title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[lsp],
                    edit=types.WorkspaceEdit(changes={uri: edits}), is_preferred=not unsafe,
                ))
            if d.location is not None and not d.code.startswith("E9"):
                edit = self.noqa_edit(lines, d)
                if edit is not None:
                    out.append(types.CodeAction(
                        title=f"ckptlint ({d.code}): Suppress with `# noqa: {d.code}`",
                        kind=types.CodeActionKind.QuickFix, diagnostics=[lsp],
                        edit=types.WorkspaceEdit(changes={uri: [edit]}),
                    ))
        return out

    def noqa_edit(self, lines: LineIndex, d: Diagnostic) -> Optional[types.TextEdit]:
        row = d.noqa_row or d.location.row
        new, count, _ = add_noqa(lines.text, [d])
        if not count:
            return None
        old_line = lines.line(row).rstrip("\r\n")
        new_line = LineIndex(new).line(row).rstrip("\r\n")
        same = 0  # the edit covers only what changed: an append is an insert at the line end
        while same < min(len(old_line), len(new_line)) and old_line[same] == new_line[same]:
            same += 1
        start = types.Position(*to_client(lines, row, same + 1, self.encoding))
        end = types.Position(*to_client(lines, row, len(old_line) + 1, self.encoding))
        return types.TextEdit(types.Range(start, end), new_line[same:])


async def _ended(job: concurrent.futures.Future) -> None:
    """Wait until a worker job ends, however it ends: its outcome is its owner's to report."""
    waiter = asyncio.wrap_future(job)
    waiter.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
    await asyncio.wait([waiter])


def debounce_for(lines: int) -> float:
    """How long to wait after a change to a file of `lines` lines before linting it: 40 ms
    up to 1,000 lines, then 10 ms more per 1,000 lines, at most 100 ms. A short wait keeps
    the editor responsive (a lint re-parses only around the change: lsp/incremental.py); a
    longer one for long files keeps a burst of typing from starting a lint per keystroke
    (each waits for the one before: lint_now)."""
    if DEBOUNCE is not None:
        return DEBOUNCE
    return min(0.1, 0.04 + max(0, lines - 1000) * 0.00001)


def _is_python(doc) -> bool:
    return doc.language_id == "python" or doc.uri.endswith((".py", ".pyi")) or (
        not doc.language_id and not doc.uri.startswith("file:")
    )


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p):
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _wanted(kind: str, only) -> bool:
    return not only or any(kind == o or kind.startswith(o + ".") for o in only)


server = CkptlintServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: CkptlintServer, params: types.DidOpenTextDocumentParams):
    ls.schedule(params.text_document.uri, 0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: CkptlintServer, params: types.DidChangeTextDocumentParams):
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    ls.schedule(uri, debounce_for(doc.text.count("\n") if doc is not None else 0))


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: CkptlintServer, params: types.DidSaveTextDocumentParams):
    if params.text_document.uri.endswith("pyproject.toml"):
        ls.relint_all()
    else:
        ls.engine.forget_project()  # a saved file may define classes other files use
        ls.schedule(params.text_document.uri, 0)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
async def did_close(ls: CkptlintServer, params: types.DidCloseTextDocumentParams):
    uri = params.text_document.uri
    task = ls.pending.pop(uri, None)
    if task is not None:
        task.cancel()
    ls.results.pop(uri, None)
    ls.running.pop(uri, None)
    ls.kept.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched(ls: CkptlintServer, params: types.DidChangeWatchedFilesParams):
    ls.relint_all()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: CkptlintServer, params: types.DidChangeConfigurationParams):
    ls.relint_all()


@server.feature(types.INITIALIZED)
async def initialized(ls: CkptlintServer, params: types.InitializedParams):
    """Ask the client to tell us when a pyproject.toml changes (when it can)."""
    caps = ls.client_capabilities.workspace
    watch = caps and caps.did_change_watched_files
    if not (watch and watch.dynamic_registration):
        return
    ls.client_register_capability(types.RegistrationParams(registrations=[types.Registration(
        id="ckptlint-pyproject",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/pyproject.toml")]
        ),
    )]))


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL], resolve_provider=False),
)
async def code_action(ls: CkptlintServer, params: types.CodeActionParams):
    uri = params.text_document.uri
    only = params.context.only
    out: List[types.CodeAction] = []
    doc = ls.documents.get(uri)
    linted = ls.results.get(uri)
    if doc is not None and (linted is None or linted.text != doc.text):
        await ls.lint_now(uri)  # asked before the debounced lint ran: answer for this text
    if _wanted(types.CodeActionKind.QuickFix.value, only):
        out.extend(ls.actions(uri, params))
    doc = ls.documents.get(uri)
    if _wanted(FIX_ALL, only) and doc is not None:
        text = doc.text
        path = to_fs_path(uri) if uri.startswith("file:") else None
        loop = asyncio.get_running_loop()
        fixed, _, _ = await loop.run_in_executor(ls.thread_pool, lambda: ls.engine.lint(path, text, fix=True))
        edits = []  # offered even when empty: a fix-on-save client then simply changes nothing
        if fixed != text:
            lines = LineIndex(text)
            whole = types.Range(types.Position(0, 0), types.Position(*end_of(lines, ls.encoding)))
            edits.append(types.TextEdit(whole, fixed))
        out.append(types.CodeAction(
            title="ckptlint: Fix all auto-fixable problems", kind=FIX_ALL,
            edit=types.WorkspaceEdit(changes={uri: edits}),
        ))
    return out


def main(argv=None) -> int:
    import argparse

    argv = list(argv or [])
    if "--version" in argv:
        print(f"ckptlint server {__version__}")
        return 0

    def codes(value: str) -> List[str]:
        return [v.strip() for v in value.split(",") if v.strip()]

    parser = argparse.ArgumentParser(
        prog="ckptlint server", description="Run the ckptlint language server over stdio.",
        epilog="The selection applies over each file's pyproject.toml, as on the command line.")
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only way)")
    parser.add_argument("--select", type=codes, help="rule codes or prefixes to enable (replaces the config)")
    parser.add_argument("--extend-select", type=codes, default=[], help="codes or prefixes to enable as well")
    parser.add_argument("--ignore", type=codes, default=[], help="codes or prefixes to disable")
    parser.add_argument("--config", metavar="FILE", help="read settings from this pyproject-shaped file")
    args, rest = parser.parse_known_args(argv)
    if rest:
        print(f"ckptlint: error: unexpected arguments for `server`: {' '.join(rest)}", file=sys.stderr)
        return 2
    server.selection = {"config": args.config, "select": args.select,
                        "extend_select": args.extend_select, "ignore": args.ignore}
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    server.start_io()
    return 0
