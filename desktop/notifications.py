"""Desktop notifications (desktop-notifier) with buttons; the tray balloon when that fails.

A notification is a convenience on top of the dialogs, never the only way to answer: where the
platform has no notification service, the failure is logged once and the dialog remains.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from desktop.resources import resource_path

log = logging.getLogger(__name__)

# Without an icon of our own, desktop-notifier shows the Python logo. The PNG ships in the
# bundle with the other resources (installer/pyinstaller/bundle_config.resource_files).
NOTIFICATION_ICON = ("icons", "flowork-256.png")


def notification_icon() -> Path:
    return resource_path(*NOTIFICATION_ICON)

Action = tuple[str, Callable[[], Any]]


class OneLineFailures(logging.Filter):
    """desktop-notifier logs a failed send (no notification service, no session bus) as a
    warning with its traceback: in the log folder that reads like a crash, though Flowork falls
    back to the tray's messages and says so. Keep the exception's text, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_library_failures() -> None:
    """Idempotent: one OneLineFailures filter on desktop-notifier's loggers."""
    for name in ("desktop_notifier.backends.base", "desktop_notifier.main"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineFailures) for f in logger.filters):
            logger.addFilter(OneLineFailures())


class Notifier:
    def __init__(self, app_name: str = "Flowork", fallback: Callable[[str, str, Callable[[], Any] | None], None] | None = None) -> None:
        quiet_library_failures()
        self._app_name = app_name
        self._notifier: Any = None
        self._broken = False
        self.fallback = fallback
        self._tasks: set[asyncio.Task[Any]] = set()

    def _get(self) -> Any:
        if self._notifier is None and not self._broken:
            try:
                from desktop_notifier import DesktopNotifier, Icon
                icon = notification_icon()
                self._notifier = DesktopNotifier(app_name=self._app_name,
                                                 app_icon=Icon(path=icon) if icon.is_file() else None)
            except Exception as exc:  # noqa: BLE001 - no notification service is not an error
                log.info("desktop notifications are unavailable: %s", exc)
                self._broken = True
        return self._notifier

    def notify(self, title: str, message: str, *, buttons: Sequence[Action] = (),
               on_clicked: Callable[[], Any] | None = None,
               on_sent: Callable[[str], None] | None = None) -> None:
        """Send without waiting; `on_sent(identifier)` lets the caller clear it later."""
        task = asyncio.ensure_future(self._send(title, message, buttons, on_clicked, on_sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, title: str, message: str, buttons: Sequence[Action],
                    on_clicked: Callable[[], Any] | None, on_sent: Callable[[str], None] | None) -> None:
        notifier = self._get()
        if notifier is not None:
            dispatched: list[bool] = []
            try:
                from desktop_notifier import Button
                identifier = await asyncio.wait_for(notifier.send(
                    title=title, message=message, on_clicked=on_clicked,
                    on_dispatched=lambda: dispatched.append(True),
                    buttons=[Button(title=label, on_pressed=fn) for label, fn in buttons]), 10)
            except Exception as exc:  # noqa: BLE001
                log.info("a desktop notification could not be shown (%s)", exc)
            else:
                if dispatched:
                    if on_sent is not None:
                        on_sent(identifier)
                    return
            # desktop-notifier logs and swallows a failed send; no dispatch means it failed.
            log.info("desktop notifications are unavailable here; using the tray's messages")
            self._broken = True
            self._notifier = None
        if self.fallback is not None:
            self.fallback(title, message, on_clicked)

    def clear(self, identifier: str) -> None:
        notifier = self._notifier
        if notifier is None:
            return

        async def clear() -> None:
            try:
                await asyncio.wait_for(notifier.clear(identifier), 5)
            except Exception as exc:  # noqa: BLE001
                log.debug("could not clear notification %s: %s", identifier, exc)
        task = asyncio.ensure_future(clear())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
