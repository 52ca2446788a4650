"""Which files a run lints and reading them: explicit files always, directories walked as ruff
walks them (its fixed list of excluded folders, `exclude` / `extend-exclude`, .gitignore),
virtual environments skipped, symlink loops cut. What a walk skips is recorded with the
reason (`--show-files` lists it), never dropped silently."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Set, Tuple

from ckptlint.analysis.modules import DEFAULT_EXCLUDE, resolve_path
from ckptlint.diagnostic import IO_ERROR, TOO_LARGE

if TYPE_CHECKING:
    import pathspec

    from ckptlint.engine.source import SourceFile


SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


@dataclass
class Discovery:
    """The files a run lints, and the paths it could not."""

    files: List[Path] = field(default_factory=list)
    missing: List[Path] = field(default_factory=list)  # named but not there / unreadable
    unreadable: List[Tuple[Path, str]] = field(default_factory=list)  # folders the walk could not list
    skipped: List[Tuple[Path, str]] = field(default_factory=list)  # (folder or source file, why) not walked


@lru_cache(maxsize=None)
def _spec(patterns: Tuple[str, ...]) -> pathspec.PathSpec:
    import pathspec  # lazily: a run on files named explicitly never needs it

    # GitIgnoreSpec (pathspec >= 0.10): .gitignore's syntax, without the "gitwildmatch"
    # factory name that pathspec 1.x deprecates (a DeprecationWarning per pattern)
    return pathspec.GitIgnoreSpec.from_lines(patterns)


# Plain names (the default list) match that file or folder at any depth, as gitignore
# does; testing path components avoids importing and compiling pathspec on every run.
_PLAIN = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.][A-Za-z0-9_.\-]*\Z")


@lru_cache(maxsize=None)
def _plain_names(patterns: Tuple[str, ...]) -> Optional[frozenset]:
    return frozenset(patterns) if all(_PLAIN.match(p) for p in patterns) else None


@lru_cache(maxsize=None)
def _resolved_dir(directory: str) -> str:
    return os.path.realpath(directory)


def _resolved(path: Path, is_link: Optional[bool] = None) -> str:
    """path.resolve(), with the folder's resolution shared by its files (realpath costs an
    lstat per path component); `is_link` when the caller knows (a scandir entry does)."""
    name = path.name
    if name in ("", ".", "..") or (path.is_symlink() if is_link is None else is_link):
        return str(resolve_path(path))
    return os.path.join(_resolved_dir(os.path.dirname(os.path.abspath(path))), name)


def exclusion(settings) -> tuple:
    """What excluded() reads of the settings, worked out once for the entries of a folder:
    (patterns, plain names or None, resolved root, root with a separator)."""
    base = DEFAULT_EXCLUDE if settings.exclude is None else settings.exclude
    patterns = tuple(base) + tuple(settings.extend_exclude)
    root = _resolved_dir(str(settings.root))
    return patterns, _plain_names(patterns), root, root if root.endswith(os.sep) else root + os.sep


def excluded(path: Path, settings, is_dir: Optional[bool] = None, full: Optional[str] = None,
             rules: Optional[tuple] = None) -> bool:
    """Does `exclude` / `extend-exclude` (relative to the settings' root) match this path?
    `full`: its resolved path, and `rules`: exclusion(settings), when the caller has them."""
    patterns, names, root, prefix = rules or exclusion(settings)
    if not patterns:
        return False
    if full is None:
        full = _resolved(path)
    if full == root:
        rel = "."
    elif full.startswith(prefix):
        rel = full[len(prefix):].replace(os.sep, "/")
    else:
        rel = path.name
    if names is not None:
        return any(part in names for part in rel.split("/"))
    if is_dir if is_dir is not None else path.is_dir():
        rel += "/"
    return _spec(patterns).match_file(rel)


def exclusion_reason(path: Path, settings, is_dir: bool) -> str:
    """Which setting excludes a path `excluded` said yes to (for --show-files)."""
    one = dataclasses.replace(settings, extend_exclude=[])
    if excluded(path, one, is_dir):
        return "in ruff's default excludes" if settings.exclude is None else "`exclude`"
    return "`extend-exclude`"


def git_root(start: Path) -> Optional[Path]:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


class _GitIgnore:
    """The .gitignore files in force for a directory, each with its own base."""

    def __init__(self, root: Optional[Path]):
        self.root = root
        self.specs: List[Tuple[Path, pathspec.PathSpec]] = []
        if root is not None:
            info = root / ".git" / "info" / "exclude"
            self._add(root, info)

    def _add(self, base: Path, file: Path) -> None:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        import pathspec

        self.specs.append((base, pathspec.GitIgnoreSpec.from_lines(lines)))

    def enter(self, directory: Path) -> int:
        """Load directory/.gitignore; return how many specs to pop on leaving."""
        if self.root is None:
            return 0
        gi = directory / ".gitignore"
        if gi.is_file():
            self._add(directory, gi)
            return 1
        return 0

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self.specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if is_dir:
                rel += "/"
            if hasattr(spec, "check_file"):
                include = spec.check_file(rel).include
                if include is not None:
                    verdict = include  # a deeper .gitignore may re-include
            elif spec.match_file(rel):
                verdict = True
        return verdict


def discover(paths: Iterable[str], settings_for, force_exclude: bool = False, suffixes=SOURCE_SUFFIXES) -> Discovery:
    """settings_for(path) -> Settings of the config governing that path."""
    out = Discovery()
    seen: Set[Path] = set()

    def add(p: Path, key: Optional[str] = None) -> None:
        key = key or _resolved(p)
        if key not in seen:
            seen.add(key)
            out.files.append(p)

    for raw in paths:
        p = Path(raw)
        if not os.path.lexists(p) or (p.is_symlink() and not p.exists()):
            out.missing.append(p)
            continue
        if p.is_dir() and not p.name.endswith(suffixes):  # a folder named x.py: reading it says so
            _walk(p, settings_for, add, suffixes, out.unreadable, out.skipped)
        elif force_exclude and excluded_explicitly(p, settings_for(p)):
            continue
        else:
            add(p)
    return out


def excluded_explicitly(p: Path, settings) -> bool:
    """A file named explicitly (--force-exclude, the editor): excluded itself or by a folder."""
    if excluded(p, settings):
        return True
    # a file inside an excluded folder is excluded too
    try:
        parts = resolve_path(p).relative_to(settings.root.resolve()).parents
    except ValueError:
        return False
    return any(excluded(settings.root / q, settings) for q in parts if str(q) != ".")


def _walk(top: Path, settings_for, add, suffixes, unreadable=None, skipped=None) -> None:
    start = Path(os.path.abspath(top))
    git = _GitIgnore(git_root(start))
    if git.root is not None and start != git.root:
        # .gitignore files between the repository root and the starting folder apply too
        rel = start.relative_to(git.root).parts
        for i in range(len(rel)):
            git.enter(git.root.joinpath(*rel[:i]))
    visited: Set[Tuple[int, int]] = set()

    def walk(directory: Path) -> None:
        try:
            st = directory.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in visited:
            return  # symlink loop or a folder reached twice
        visited.add(key)
        pushed = git.enter(Path(os.path.abspath(directory)))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:  # reported, so no file in it is skipped silently
            if unreadable is not None:
                unreadable.append((directory, f"cannot list folder: {exc.strerror or exc}"))
            entries = []
        settings = settings_for(directory)
        rules = exclusion(settings)
        here = _resolved_dir(os.path.abspath(directory))
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:  # e.g. a link to itself: reading it reports the error
                is_dir = False
            if not is_dir and not name.endswith(suffixes):
                continue
            path = Path(directory, name)
            if is_dir and os.path.isfile(os.path.join(entry.path, "pyvenv.cfg")):
                why: Optional[str] = "a virtual environment (pyvenv.cfg)"
            else:
                # resolved once, from the folder's resolution and what scandir knows of links
                full = str(resolve_path(path)) if entry.is_symlink() else os.path.join(here, name)
                why = None
                if excluded(path, settings, is_dir, full, rules):
                    why = exclusion_reason(path, settings, is_dir)
                elif git.specs and git.ignored(Path(os.path.abspath(path)), is_dir):
                    why = ".gitignore"
            if why is not None:
                if skipped is not None:
                    skipped.append((path, why))
            elif is_dir:
                walk(path)
            else:
                add(path, full)
        for _ in range(pushed):
            git.specs.pop()

    walk(top)


def project_skip(top: Path, settings_for) -> Callable[[Path, bool], bool]:
    """`skip(path, is_dir)` for analysis.modules.walk_modules: what a run over `top` would
    not lint (`exclude` / `extend-exclude` of the governing settings, .gitignore inside a git
    repository), so the project index reads the files a run reads."""
    start = Path(os.path.abspath(top))
    git = _GitIgnore(git_root(start))
    entered: Set[Path] = set()
    if git.root is not None and start != git.root:
        rel = start.relative_to(git.root).parts
        for i in range(len(rel)):
            entered.add(git.root.joinpath(*rel[:i]))
            git.enter(git.root.joinpath(*rel[:i]))

    folders: Dict[str, tuple] = {}  # a folder's settings and exclusion, worked out once for its entries

    def skip(path: Path, is_dir: bool) -> bool:
        full = os.path.abspath(path)
        parent, name = os.path.split(full)
        known = folders.get(parent)
        if known is None:
            folder = Path(parent)
            if folder not in entered:  # walked top-down: a folder's .gitignore before its entries
                entered.add(folder)
                git.enter(folder)
            settings = settings_for(folder)
            known = folders[parent] = (settings, exclusion(settings), _resolved_dir(parent))
        settings, rules, here = known
        resolved = None if os.path.islink(full) else os.path.join(here, name)
        if excluded(path, settings, is_dir, resolved, rules):
            return True
        return bool(git.specs) and git.ignored(Path(os.path.abspath(path)), is_dir)

    return skip


def read_source(path: Path, settings) -> SourceFile:
    """The file's text, decoded exactly (source.decode), or SourceError (E902/E903)."""
    from ckptlint.engine.source import SourceError, decode  # only runs that read files need it

    try:
        # O_NONBLOCK: opening a FIFO named x.py must not wait for a writer forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise SourceError(*IO_ERROR, "is a directory, not a file") from None
    except OSError as exc:
        raise SourceError(*IO_ERROR, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SourceError(*IO_ERROR, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(*IO_ERROR, "not a regular file (a FIFO, socket or device)")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        size = st.st_size
        if size <= settings.max_file_size:
            try:
                data = fh.read(settings.max_file_size + 1)  # a file still growing stops here too
            except OSError as exc:
                raise SourceError(*IO_ERROR, f"cannot read: {exc.strerror or exc}") from None
            size = len(data)
        if size > settings.max_file_size:
            raise SourceError(
                *TOO_LARGE,
                f"not checked: {_size(size)} is over `max-file-size` ({_size(settings.max_file_size)})",
            )
    return decode(data)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"
