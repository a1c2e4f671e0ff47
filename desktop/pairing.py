"""Pairing: with an empty allow-list, the first address that sends a valid signed frame is
asked about in a native dialog; the engine stores the answer through add_owner.

The dialog says where the request came from (the web page's origin and the connection's
address), shows everything a client sent as plain text, and is the only one: while it is open,
other requests are refused without a dialog (the engine asks one question at a time too).
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.auth.access import AccessRequest

log = logging.getLogger(__name__)


def describe_origin(request: AccessRequest) -> str:
    origin = request.origin or "no web page (a program, not a browser)"
    return f"From: {origin}\nConnection: {request.remote}"


class PairingDialog(QMessageBox):
    def __init__(self, request: AccessRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.address = request.address
        self.setWindowTitle("Allow a new owner?")  # Qt adds "— Flowork"
        self.setIcon(QMessageBox.Icon.Question)
        # The origin is whatever the client's Origin header said: never rendered as markup.
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(f"Allow {request.address} to control this engine?\n\n{describe_origin(request)}")
        self.setInformativeText("A web GUI signed in with this address wants to use the engine. "
                                "Allow it only if it is your own address and you opened Flowork "
                                "on that page just now: its owner can run workflows and read the "
                                "folders you share.")
        self.allow_button = self.addButton("&Allow", QMessageBox.ButtonRole.AcceptRole)
        self.deny_button = self.addButton("&Deny", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.deny_button)  # Enter must not hand over the engine
        self.setEscapeButton(self.deny_button)
        self.setModal(False)


class PairingController:
    def __init__(self) -> None:
        self.dialogs: dict[str, PairingDialog] = {}

    async def ask(self, request: AccessRequest) -> bool:
        """The engine's pairing handler: show the dialog, wait for the answer. A request that
        arrives while a dialog is open is refused without one."""
        if self.dialogs:
            log.info("pairing request of %s (%s) refused: another one is being asked about",
                     request.address, request.origin or request.remote)
            return False
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        dialog = PairingDialog(request)
        self.dialogs[request.address] = dialog

        def decided(button: object) -> None:
            if not answer.done():
                answer.set_result(button is dialog.allow_button)

        dialog.buttonClicked.connect(decided)
        dialog.finished.connect(lambda _r: answer.done() or answer.set_result(False))
        dialog.show()
        dialog.raise_()
        try:
            allowed = await answer
        finally:
            self.dialogs.pop(request.address, None)
            dialog.hide()
            dialog.deleteLater()
        log.info("pairing of %s (%s, %s) %s", request.address, request.origin, request.remote,
                 "allowed" if allowed else "denied")
        return allowed

    def close_all(self) -> None:
        for dialog in list(self.dialogs.values()):
            dialog.done(0)
