"""Folder watches with watchfiles: its native watcher runs in a worker thread (anyio), and the
loop only receives batches of changes, grouped for `debounce_ms`.

Each change is checked again against the shared folders (a symlink inside could point out) by
the owner of the rule (`on_changes`); this module only watches and filters by kind and glob.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Callable

from watchfiles import Change, awatch

from engine.triggers.options import WatchOptions
from engine.triggers.rules import matches

log = logging.getLogger(__name__)

KIND = {Change.added: "created", Change.modified: "modified", Change.deleted: "deleted"}


class FolderWatch:
    def __init__(self, folder: Path, options: WatchOptions,
                 on_changes: Callable[[list[tuple[str, Path]]], None],
                 on_failure: Callable[[str], None],
                 ignore: Callable[[], tuple[Path, ...]] = tuple) -> None:
        self.folder = folder
        # Never even delivered: the engine's own folders under a watched one (its database and
        # log change all the time), resolved off the loop when the watch starts. The owner's
        # re-check of every change still refuses anything else.
        self._ignore = ignore
        self._ignored: tuple[str, ...] = ()
        self.options = options
        self._on_changes = on_changes
        self._on_failure = on_failure
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.folder}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # noqa: BLE001 - already reported by _run
                pass
            self._task = None

    def _wanted(self, _change: Change, path: str) -> bool:
        return not any(path == p or path.startswith(p + os.sep) for p in self._ignored)

    async def _run(self) -> None:
        wanted = set(self.options.events)
        try:
            self._ignored = tuple(str(p) for p in await asyncio.to_thread(self._ignore))
            watcher = awatch(self.folder, stop_event=self._stop, debounce=self.options.debounce_ms,
                             step=min(50, self.options.debounce_ms), recursive=self.options.recursive,
                             ignore_permission_denied=True, watch_filter=self._wanted)
            self.ready.set()
            async for batch in watcher:
                picked: dict[tuple[str, str], tuple[str, Path]] = {}
                for change, raw in sorted(batch, key=lambda c: c[1]):
                    kind = KIND.get(change)
                    path = Path(raw)
                    if kind in wanted and matches(self.options.pattern, path, self.folder):
                        picked[(kind, raw)] = (kind, path)
                if picked:
                    self._on_changes(list(picked.values()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a folder that vanished, a watcher limit
            log.warning("the folder watch of %s stopped: %s", self.folder, exc)
            self._on_failure(f"the folder {self.folder} can no longer be watched ({exc})")
        finally:
            self.ready.set()
