"""Pairing: with an empty allow-list, the first address that sends a valid signed frame is
asked about in a native dialog; the engine stores the answer through add_owner."""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)


class PairingDialog(QMessageBox):
    def __init__(self, address: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.address = address
        self.setWindowTitle("Allow a new owner?")  # Qt adds "— Flowork"
        self.setIcon(QMessageBox.Icon.Question)
        self.setText(f"Allow {address} to control this engine?")
        self.setInformativeText("A web GUI signed in with this address wants to use the engine. "
                                "Allow it only if it is your own address: its owner can run "
                                "workflows and read the folders you share.")
        self.allow_button = self.addButton("&Allow", QMessageBox.ButtonRole.AcceptRole)
        self.deny_button = self.addButton("&Deny", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.deny_button)  # Enter must not hand over the engine
        self.setEscapeButton(self.deny_button)
        self.setModal(False)


class PairingController:
    def __init__(self) -> None:
        self.dialogs: dict[str, PairingDialog] = {}

    async def ask(self, address: str) -> bool:
        """The engine's pairing handler: show the dialog, wait for the answer."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        dialog = PairingDialog(address)
        self.dialogs[address] = dialog

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
            self.dialogs.pop(address, None)
            dialog.hide()
            dialog.deleteLater()
        log.info("pairing of %s %s", address, "allowed" if allowed else "denied")
        return allowed

    def close_all(self) -> None:
        for dialog in list(self.dialogs.values()):
            dialog.done(0)
