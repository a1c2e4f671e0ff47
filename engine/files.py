"""The folders the user shared with the engine, and safe listings of what is inside them.

Nothing a client sends becomes a path unchecked: a requested path is resolved to its real path
(symlinks and `..` followed) and must lie inside a shared folder's real path.
"""

from __future__ import annotations

import heapq
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.protocol.errors import EngineError, ErrorCode

DEFAULT_PAGE = 500
# A page is encoded into one reply on the event loop (about 15 µs per item with C json):
# 1000 items keep that to a few milliseconds; larger folders take more pages.
MAX_PAGE = 1000
MAX_PATH_LEN = 4096


@dataclass(frozen=True)
class Listing:
    path: str
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


class SharedFolders:
    def __init__(self, roots: tuple[Path, ...] | list[Path] = ()) -> None:
        self._roots: tuple[Path, ...] = ()
        self.replace(roots)

    def replace(self, roots: tuple[Path, ...] | list[Path]) -> None:
        self._roots = tuple(dict.fromkeys(Path(r).resolve() for r in roots))

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def drives(self) -> list[dict[str, Any]]:
        return [{"name": root.name or str(root), "type": "drive", "path": str(root)}
                for root in self._roots]

    def resolve_inside(self, requested: str, *, must_exist: bool = True) -> Path:
        """The real path of `requested` if it lies inside a shared folder, else EngineError.
        Runs file-system calls: call it off the event loop."""
        if not isinstance(requested, str) or not requested or "\x00" in requested:
            raise EngineError.invalid("path", "must be a non-empty path without NUL characters")
        if len(requested) > MAX_PATH_LEN:
            raise EngineError.invalid("path", f"is longer than {MAX_PATH_LEN} characters")
        if not self._roots:
            raise EngineError(ErrorCode.FORBIDDEN, "No folder is shared with this engine. "
                              "Share one from the desktop app (Shared folders...) or start the "
                              "engine with --root.")
        # No `~` expansion: paths come from request_drives, and `~user` would let a client
        # probe which accounts exist (and crash on unknown ones).
        candidate = Path(requested)
        if not candidate.is_absolute():
            raise EngineError.invalid("path", "must be an absolute path inside a shared folder")
        try:
            real = candidate.resolve(strict=must_exist)
        except FileNotFoundError:
            raise EngineError(ErrorCode.NOT_FOUND, f"The path {requested} does not exist.") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on older Pythons
            raise EngineError(ErrorCode.FORBIDDEN, f"The path {requested} cannot be resolved: {exc}.") from None
        for root in self._roots:
            if real == root or real.is_relative_to(root):
                return real
        raise EngineError(ErrorCode.FORBIDDEN, f"The path {requested} is outside the shared folders.")

    def list_directory(self, requested: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> Listing:
        """One page of a folder's entries: folders first, then names case-insensitively.
        Blocking: run it in a thread."""
        real = self.resolve_inside(requested)
        if not real.is_dir():
            raise EngineError(ErrorCode.INVALID_FIELD, f"The path {requested} is not a folder.",
                              field="path")
        try:
            with os.scandir(real) as entries:
                groups: tuple[list[str], list[str]] = ([], [])  # folders, files
                for entry in entries:
                    groups[0 if _is_dir(entry) else 1].append(entry.name)
        except PermissionError:
            raise EngineError(ErrorCode.FORBIDDEN, f"The engine may not read the folder {requested}.") from None
        except OSError as exc:
            raise EngineError(ErrorCode.NOT_FOUND, f"The folder {requested} cannot be read: {exc.strerror}.") from None
        names = _page(groups, offset, offset + limit)
        items = [self._describe(real, name) for name in names]
        return Listing(str(real), items, len(groups[0]) + len(groups[1]), offset, limit)

    def _inside(self, path: Path) -> bool:
        real = path.resolve()
        return any(real == root or real.is_relative_to(root) for root in self._roots)

    def _describe(self, folder: Path, name: str) -> dict[str, Any]:
        path = folder / name
        info: os.stat_result | None = None
        try:
            info = os.stat(path)  # follows symlinks, like the listing a person expects
            is_dir = stat.S_ISDIR(info.st_mode)
            size, modified = (None if is_dir else info.st_size), info.st_mtime
        except OSError:  # a dangling symlink, or a file that vanished meanwhile
            is_dir, size, modified = False, None, None
        if info is not None and path.is_symlink() and not self._inside(path):
            # A link out of the shared folders is listed (it is in the folder), but nothing
            # about what it points to is told; opening it is refused by resolve_inside.
            size, modified, info = None, None, None
        hidden = name.startswith(".")
        if os.name == "nt" and info is not None:
            try:
                hidden = hidden or bool(info.st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)  # type: ignore[attr-defined]
            except (OSError, AttributeError):
                pass
        return {"name": name, "type": "directory" if is_dir else "file",
                "path": str(path), "size": size, "modified": modified,
                "hidden": hidden}


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; free for everything else (the d_type)
    except OSError:
        return False


def _sort_key(name: str) -> str:
    # Orders like (name.casefold(), name): NUL sorts first and never occurs in a file name.
    return name.casefold() + "\0" + name


def _page(groups: tuple[list[str], list[str]], start: int, end: int) -> list[str]:
    """Names at positions start..end of folders-then-files, each group sorted by _sort_key.
    A first page of a huge folder only selects its smallest names (heapq.nsmallest, the same
    order as sorting), instead of sorting everything: sorting 100,000 names cost 4 times the
    folder read itself."""
    page: list[str] = []
    first = 0  # position of the group's first name in the whole listing
    for names in groups:
        lo, hi = max(start - first, 0), min(end - first, len(names))
        if lo < hi:
            ordered = (heapq.nsmallest(hi, names, key=_sort_key) if hi * 4 < len(names)
                       else sorted(names, key=_sort_key))
            page += ordered[lo:hi]
        first += len(names)
    return page
