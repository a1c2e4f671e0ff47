"""The folders the user shared with the engine: listings, reads and writes confined to them.

Nothing a client sends becomes a path unchecked, and what is checked is what is opened: on
POSIX every access walks from a directory handle of the shared folder, one component at a
time, with `openat(..., O_NOFOLLOW)` (`os.open(dir_fd=...)`). A symbolic link met on the way is
followed by this code, not by the kernel, and only while it stays inside a shared folder; so a
folder swapped for a link (even by an atomic `renameat2` exchange) between a check and a use
cannot lead outside. Listings scan the opened handle; writes go to a temporary file created in
the opened parent and renamed relative to it.

The engine's own folders (data, config, logs, the desktop app's config and keyring fallback
files) are never reachable through a share, whatever is shared: they are recognised by what
the opened handle is (device and inode), not by name.

Windows has no `dir_fd`: there the path is resolved, checked, opened, and checked again after
opening (SECURITY.md says what that leaves open).
"""

from __future__ import annotations

import heapq
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable

from engine.protocol.errors import EngineError, ErrorCode

DEFAULT_PAGE = 500
# A page is encoded into one reply on the event loop (about 15 µs per item with C json):
# 1000 items keep that to a few milliseconds; larger folders take more pages.
MAX_PAGE = 1000
MAX_PATH_LEN = 4096
MAX_LINKS = 40  # symbolic links followed in one path, like the kernel's ELOOP limit

# POSIX: the walk needs openat with O_NOFOLLOW and O_DIRECTORY, and scandir on a handle.
HANDLE_WALK = (os.open in os.supports_dir_fd and os.scandir in os.supports_fd
               and hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY"))
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Listing:
    path: str
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def protected_refusal(requested: str, what: str) -> EngineError:
    return EngineError(ErrorCode.FORBIDDEN,
                       f"The path {requested} is inside {what}; the engine never reads, lists or "
                       f"writes it through a shared folder, whatever is shared, because it holds "
                       f"the engine's keys, database and settings.")


class _Protected:
    """The engine's own folders and files, by identity (device, inode) and by real path."""

    def __init__(self, entries: list[tuple[Path, str]]) -> None:
        self.real: list[tuple[Path, str]] = []
        self.ids: dict[tuple[int, int], str] = {}
        self.inodes: set[int] = set()
        for path, what in entries:
            try:
                info = os.stat(path)
            except OSError:
                continue  # not there (yet): nothing to reach
            self.ids[(info.st_dev, info.st_ino)] = what
            self.inodes.add(info.st_ino)
            self.real.append((Path(os.path.realpath(path)), what))

    def of(self, info: os.stat_result) -> str | None:
        return self.ids.get((info.st_dev, info.st_ino))

    def containing(self, real: Path) -> str | None:
        for folder, what in self.real:
            if real == folder or real.is_relative_to(folder):
                return what
        return None


class SharedFolders:
    def __init__(self, roots: tuple[Path, ...] | list[Path] = (),
                 protected: Callable[[], Iterable[tuple[Path, str]]] | None = None) -> None:
        """`protected()` names the engine's own folders and files with what each is (for the
        refusal's sentence); it is asked at every access, so a folder made later counts too."""
        self._roots: tuple[Path, ...] = ()
        self._protected = protected or (lambda: ())
        self.replace(roots)

    def replace(self, roots: tuple[Path, ...] | list[Path]) -> None:
        self._roots = tuple(dict.fromkeys(Path(r).resolve() for r in roots))

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def drives(self) -> list[dict[str, Any]]:
        return [{"name": root.name or str(root), "type": "drive", "path": str(root)}
                for root in self._roots]

    # -- the checks every access starts with -----------------------------------------------

    def _split(self, requested: str) -> tuple[Path, list[str]]:
        """The shared folder `requested` names, and the components below it (unresolved)."""
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
        root = self._root_of(candidate)
        if root is None:
            raise EngineError(ErrorCode.FORBIDDEN, f"The path {requested} is outside the shared folders.")
        return root, [p for p in candidate.parts[len(root.parts):] if p not in ("", ".")]

    def _root_of(self, path: PurePath) -> Path | None:
        best = None
        for root in self._roots:
            if path.parts[:len(root.parts)] == root.parts and (best is None or len(root.parts) > len(best.parts)):
                best = root
        return best

    def protected_folders(self) -> tuple[Path, ...]:
        """The engine's own folders and files, resolved: a folder watch drops their changes at
        the watcher (the engine writes its database and log all the time); the handle walk
        stays what refuses them."""
        out = []
        for path, _what in self._protected():
            try:
                out.append(Path(path).resolve())
            except OSError:
                continue
        return tuple(out)

    def _guard(self) -> _Protected:
        return _Protected([(Path(p), what) for p, what in self._protected()])

    # -- public operations (blocking: run them in a thread) --------------------------------

    def resolve_inside(self, requested: str, *, must_exist: bool = True) -> Path:
        """The real path of `requested` if it lies inside a shared folder (and outside the
        engine's own folders), else EngineError. Only for telling paths; every read, write and
        listing goes through the handle walk itself."""
        with self._walk(requested, must_exist=must_exist, final="any") as found:
            return found.real

    def list_directory(self, requested: str, offset: int = 0, limit: int = DEFAULT_PAGE) -> Listing:
        """One page of a folder's entries: folders first, then names case-insensitively."""
        with self._walk(requested, final="dir") as found:
            guard = found.guard
            try:
                groups: tuple[list[str], list[str]] = ([], [])  # folders, files
                with _scandir(found) as entries:
                    for entry in entries:
                        if _is_protected_entry(entry, guard):
                            continue  # the engine's own folders are not even named
                        groups[0 if _is_dir(entry) else 1].append(entry.name)
            except PermissionError:
                raise EngineError(ErrorCode.FORBIDDEN, f"The engine may not read the folder {requested}.") from None
            except OSError as exc:
                raise EngineError(ErrorCode.NOT_FOUND, f"The folder {requested} cannot be read: {exc.strerror}.") from None
            names = _page(groups, offset, offset + limit)
            items = [self._describe(found, name) for name in names]
            return Listing(str(found.real), items, len(groups[0]) + len(groups[1]), offset, limit)

    def read_bytes(self, requested: str, max_bytes: int) -> tuple[bytes, Path]:
        """The whole content of a regular file (at most `max_bytes`), and its real path."""
        with self._walk(requested, final="file") as found:
            info = os.fstat(found.fd)
            if info.st_size > max_bytes:
                raise EngineError(ErrorCode.INVALID_FIELD, f"{requested} is {info.st_size} bytes; "
                                  f"at most {max_bytes} can be read.", field="path")
            chunks, left = [], max_bytes + 1
            while left > 0:
                chunk = os.read(found.fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
            if len(data) > max_bytes:
                raise EngineError(ErrorCode.INVALID_FIELD, f"{requested} grew past {max_bytes} bytes "
                                  f"while being read.", field="path")
            return data, found.real

    def write_bytes(self, requested: str, data: bytes, *, append: bool = False) -> Path:
        """Write (atomically: a temporary file in the same opened folder, then a rename
        relative to it) or append. Returns the real path written."""
        with self._walk(requested, must_exist=False, final="parent") as found:
            name = found.name
            if not HANDLE_WALK:
                return _write_by_path(found.real, data, append)
            try:
                info = os.stat(name, dir_fd=found.fd, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise EngineError(ErrorCode.INVALID_FIELD, f"{requested} is a folder, not a file.", field="path")
            if info is not None and not stat.S_ISREG(info.st_mode):
                raise EngineError(ErrorCode.FORBIDDEN, f"{requested} is not a regular file; only "
                                  f"regular files are written.")
            if info is not None and found.guard.of(info):
                raise protected_refusal(requested, found.guard.of(info) or "")
            if append:
                fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY,
                             0o666, dir_fd=found.fd)
                try:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        raise EngineError(ErrorCode.FORBIDDEN, f"{requested} is not a regular file.")
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                return found.real
            temp = f".{name[:100]}.{uuid.uuid4().hex[:12]}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY,
                         0o666, dir_fd=found.fd)
            try:
                try:
                    if info is not None:
                        os.fchmod(fd, stat.S_IMODE(info.st_mode))
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(temp, name, src_dir_fd=found.fd, dst_dir_fd=found.fd)
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=found.fd)
                except OSError:
                    pass
                raise
            try:
                os.fsync(found.fd)
            except OSError:
                pass
            return found.real

    # -- the walk ----------------------------------------------------------------------------

    def _walk(self, requested: str, *, must_exist: bool = True, final: str = "any") -> "_Found":
        """Open `requested` (final="dir": a folder, "file": a regular file for reading,
        "parent": its folder, the name kept for a write, "any": whatever it is)."""
        root, parts = self._split(requested)
        guard = self._guard()
        what = guard.containing(root)
        if what is not None:
            raise protected_refusal(requested, what)
        if not HANDLE_WALK:
            return _walk_by_path(self, requested, root, parts, guard, must_exist=must_exist, final=final)
        return _HandleWalk(self, requested, guard).run(root, parts, must_exist=must_exist, final=final)

    def _describe(self, found: "_Found", name: str) -> dict[str, Any]:
        path = found.real / name
        info: os.stat_result | None = None
        is_dir, size, modified = False, None, None
        try:
            link = os.stat(name, dir_fd=found.fd, follow_symlinks=False) if HANDLE_WALK else os.lstat(path)
        except OSError:
            link = None
        if link is not None and not stat.S_ISLNK(link.st_mode):
            info = link
        elif link is not None:
            # A link is described by what it leads to only when that is inside the shares (and
            # not the engine's own): otherwise it is listed, but nothing about its target is told.
            try:
                with self._walk(str(path), final="any") as target:
                    info = os.fstat(target.fd) if target.fd >= 0 else os.stat(target.real)
            except (EngineError, OSError):
                info = None
                try:  # whether it looks like a folder, as before; nothing else
                    is_dir = stat.S_ISDIR((os.stat(name, dir_fd=found.fd) if HANDLE_WALK else os.stat(path)).st_mode)
                except OSError:
                    pass
        if info is not None:
            is_dir = stat.S_ISDIR(info.st_mode)
            size, modified = (None if is_dir else info.st_size), info.st_mtime
        hidden = name.startswith(".")
        if os.name == "nt" and info is not None:
            try:
                hidden = hidden or bool(info.st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)  # type: ignore[attr-defined]
            except (OSError, AttributeError):
                pass
        return {"name": name, "type": "directory" if is_dir else "file",
                "path": str(path), "size": size, "modified": modified,
                "hidden": hidden}


class _Found:
    """What a walk opened: a handle (fd; -1 on the path fallback), its real path, and for a
    "parent" walk the final name. A context manager that closes the handle."""

    def __init__(self, fd: int, real: Path, guard: _Protected, name: str = "") -> None:
        self.fd, self.real, self.guard, self.name = fd, real, guard, name

    def __enter__(self) -> "_Found":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _HandleWalk:
    """One component at a time from the shared folder's handle, links followed here."""

    def __init__(self, folders: SharedFolders, requested: str, guard: _Protected) -> None:
        self.folders, self.requested, self.guard = folders, requested, guard
        self.links = 0

    def _refuse_outside(self) -> EngineError:
        return EngineError(ErrorCode.FORBIDDEN, f"The path {self.requested} is outside the shared folders.")

    def _check(self, fd: int) -> os.stat_result:
        info = os.fstat(fd)
        what = self.guard.of(info)
        if what is not None:
            raise protected_refusal(self.requested, what)
        return info

    def _open_root(self, root: Path, stack: list[tuple[int, str]]) -> None:
        try:
            fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
        except OSError as exc:
            raise EngineError(ErrorCode.NOT_FOUND, f"The shared folder {root} cannot be opened: "
                              f"{exc.strerror}.") from None
        stack.append((fd, str(root)))
        self._check(fd)

    def run(self, root: Path, parts: list[str], *, must_exist: bool, final: str) -> _Found:
        stack: list[tuple[int, str]] = []  # (fd, name) from the root down
        try:
            self._open_root(root, stack)
            todo = list(reversed(parts))
            while todo:
                part = todo.pop()
                if part == "..":
                    if len(stack) == 1:
                        raise self._refuse_outside()
                    os.close(stack.pop()[0])
                    continue
                if not todo and final != "dir":
                    found = self._last(stack, part, todo, must_exist=must_exist, final=final)
                    if found is not None:
                        return found
                    continue  # it was a link: its target's components are in todo now
                try:
                    fd = os.open(part, _DIR_FLAGS, dir_fd=stack[-1][0])
                except OSError as exc:
                    if self._is_link(stack[-1][0], part):
                        self._follow(stack, part, todo)
                        continue
                    raise self._error(exc, folder=True) from None
                stack.append((fd, part))
                self._check(fd)
            if final in ("parent", "file"):
                raise EngineError(ErrorCode.INVALID_FIELD, f"The path {self.requested} is a folder, "
                                  f"not a file.", field="path")
            path = _path_of(stack)
            return _Found(stack.pop()[0], path, self.guard)
        finally:
            for fd, _ in stack:
                os.close(fd)

    def _last(self, stack: list[tuple[int, str]], part: str, todo: list[str], *,
              must_exist: bool, final: str) -> _Found | None:
        """The final component: kept as a name in its opened parent ("parent"), or opened
        without following a link. None when it was a link (followed into `todo`)."""
        parent = stack[-1][0]
        if self._is_link(parent, part):
            self._follow(stack, part, todo)
            return None
        if final == "parent":
            path = _path_of(stack) / part
            return _Found(stack.pop()[0], path, self.guard, part)
        try:
            fd = os.open(part, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK | _BINARY, dir_fd=parent)
        except OSError as exc:
            if self._is_link(parent, part):  # swapped for a link just now
                self._follow(stack, part, todo)
                return None
            if not must_exist and isinstance(exc, FileNotFoundError):
                return _Found(-1, _path_of(stack) / part, self.guard)
            raise self._error(exc, folder=False) from None
        try:
            info = self._check(fd)
            if final == "file" and not stat.S_ISREG(info.st_mode):
                if stat.S_ISDIR(info.st_mode):
                    raise EngineError(ErrorCode.INVALID_FIELD, f"{self.requested} is a folder, not a file.",
                                      field="path")
                raise EngineError(ErrorCode.FORBIDDEN, f"{self.requested} is not a regular file; only "
                                  f"regular files are read.")
            if _NONBLOCK:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return _Found(fd, _path_of(stack) / part, self.guard)

    def _is_link(self, parent: int, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _follow(self, stack: list[tuple[int, str]], name: str, todo: list[str]) -> None:
        """Splice the link's target into the walk: a relative target goes on from the link's
        folder, an absolute one from the shared folder it names (else it is outside)."""
        self.links += 1
        if self.links > MAX_LINKS:
            raise EngineError(ErrorCode.FORBIDDEN, f"The path {self.requested} has too many "
                              f"symbolic links (a loop?).")
        try:
            target = PurePath(os.readlink(name, dir_fd=stack[-1][0]))
        except OSError as exc:
            raise self._error(exc, folder=False) from None
        if target.is_absolute():
            root = self.folders._root_of(target)
            if root is None:
                raise self._refuse_outside()
            what = self.guard.containing(root)
            if what is not None:
                raise protected_refusal(self.requested, what)
            while stack:
                os.close(stack.pop()[0])
            self._open_root(root, stack)
            rest = target.parts[len(root.parts):]
        else:
            rest = target.parts
        todo.extend(reversed([p for p in rest if p not in ("", ".")]))

    def _error(self, exc: OSError, *, folder: bool) -> EngineError:
        if isinstance(exc, FileNotFoundError):
            return EngineError(ErrorCode.NOT_FOUND, f"The path {self.requested} does not exist.")
        if isinstance(exc, NotADirectoryError):
            return EngineError(ErrorCode.INVALID_FIELD, f"The path {self.requested} is not a folder.",
                               field="path")
        if isinstance(exc, PermissionError):
            return EngineError(ErrorCode.FORBIDDEN, f"The engine may not open {self.requested}.")
        return EngineError(ErrorCode.FORBIDDEN, f"The path {self.requested} cannot be opened: {exc.strerror}.")


def _path_of(stack: list[tuple[int, str]]) -> Path:
    """The real path of the handle on top of the stack (the root's path, then the names)."""
    path = Path(stack[0][1])
    for _, part in stack[1:]:
        path = path / part
    return path


# -- the path fallback (Windows: no dir_fd) ----------------------------------------------------

def _walk_by_path(folders: SharedFolders, requested: str, root: Path, parts: list[str],
                  guard: _Protected, *, must_exist: bool, final: str) -> _Found:
    """Resolve, check, and for reads check again after opening (a narrower window, not none)."""
    candidate = root.joinpath(*parts) if parts else root
    try:
        real = candidate.resolve(strict=must_exist)
    except FileNotFoundError:
        raise EngineError(ErrorCode.NOT_FOUND, f"The path {requested} does not exist.") from None
    except (OSError, RuntimeError) as exc:
        raise EngineError(ErrorCode.FORBIDDEN, f"The path {requested} cannot be resolved: {exc}.") from None
    _inside_or_refuse(folders, requested, real, guard)
    if final == "parent":
        return _Found(-1, real, guard, real.name)
    if final == "dir":
        if not real.is_dir():
            raise EngineError(ErrorCode.INVALID_FIELD, f"The path {requested} is not a folder.", field="path")
        return _Found(-1, real, guard)
    if final == "file":
        if real.is_dir():
            raise EngineError(ErrorCode.INVALID_FIELD, f"{requested} is a folder, not a file.", field="path")
        fd = os.open(real, os.O_RDONLY | _BINARY)
        try:
            if guard.of(os.fstat(fd)) or not stat.S_ISREG(os.fstat(fd).st_mode):
                raise protected_refusal(requested, guard.of(os.fstat(fd)) or "a file that is not regular")
            _inside_or_refuse(folders, requested, Path(os.path.realpath(real)), guard)
        except BaseException:
            os.close(fd)
            raise
        return _Found(fd, real, guard)
    return _Found(-1, real, guard)


def _inside_or_refuse(folders: SharedFolders, requested: str, real: Path, guard: _Protected) -> None:
    if not any(real == r or real.is_relative_to(r) for r in folders.roots):
        raise EngineError(ErrorCode.FORBIDDEN, f"The path {requested} is outside the shared folders.")
    what = guard.containing(real)
    if what is not None:
        raise protected_refusal(requested, what)


def _write_by_path(real: Path, data: bytes, append: bool) -> Path:
    from engine.storage_files import atomic_write_bytes
    if real.is_dir():
        raise EngineError(ErrorCode.INVALID_FIELD, f"{real} is a folder, not a file.", field="path")
    if not real.parent.is_dir():
        raise EngineError(ErrorCode.NOT_FOUND, f"The path {real} does not exist.")
    if append:
        with open(real, "ab") as handle:
            handle.write(data)
    else:
        atomic_write_bytes(real, data)
    return real


# -- helpers -----------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _scandir(found: _Found) -> Any:
    return os.scandir(found.fd if HANDLE_WALK and found.fd >= 0 else found.real)


def _is_protected_entry(entry: os.DirEntry[str], guard: _Protected) -> bool:
    """By identity; the inode comes with the folder read (free), a stat only on a match."""
    try:
        if entry.inode() not in guard.inodes:
            return False
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return guard.of(info) is not None


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
