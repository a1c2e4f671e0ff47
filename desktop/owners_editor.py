"""The owners in Settings: each allowed address with a Remove button, a field to add one, and
the addresses recently turned away with an Allow button each (desktop/refused.py)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from eth_utils import to_checksum_address

from engine.auth.frame_auth import ADDRESS_RE, normalize_address
from desktop.refused import Refusal


def checksummed(address: str) -> str:
    """EIP-55 mixed case, as wallets show it (pairing stores addresses in lower case)."""
    try:
        return to_checksum_address(address)
    except ValueError:
        return address


def _address_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class OwnersEditor(QWidget):
    problem = Signal(str)  # a sentence for the dialog's error line ("" clears it)

    def __init__(self, owners: tuple[str, ...], refused: list[Refusal], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._owners = list(owners)
        self._refused = refused
        self.remove_buttons: dict[str, QPushButton] = {}
        self.allow_buttons: dict[str, QPushButton] = {}
        self.list = QGridLayout()
        self.list.setContentsMargins(0, 0, 0, 0)
        self.list.setColumnStretch(0, 1)
        self.new_owner = QLineEdit()
        self.new_owner.setPlaceholderText("0x… another address to allow")
        self.add_button = QPushButton("A&dd")
        self.add_button.clicked.connect(self.add_typed)
        self.new_owner.returnPressed.connect(self.add_typed)
        add = QHBoxLayout()
        add.addWidget(self.new_owner, 1)
        add.addWidget(self.add_button)
        self.refused_title = QLabel("Recently turned away (not owners):")
        self.refused_list = QGridLayout()
        self.refused_list.setColumnStretch(0, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.list)
        layout.addLayout(add)
        layout.addWidget(self.refused_title)
        layout.addLayout(self.refused_list)
        self._rebuild()

    def owners(self) -> tuple[str, ...]:
        return tuple(self._owners)

    def set_refused(self, refused: list[Refusal]) -> None:
        self._refused = refused
        self._rebuild()

    def add(self, address: str) -> bool:
        address = address.strip()
        if not ADDRESS_RE.match(address):
            self.problem.emit(f"{address!r} is not an address (0x followed by 40 hex digits).")
            return False
        if normalize_address(address) not in {normalize_address(o) for o in self._owners}:
            self._owners.append(address)
        self.problem.emit("")
        self._rebuild()
        return True

    def add_typed(self) -> None:
        if self.add(self.new_owner.text()):
            self.new_owner.clear()

    def remove(self, address: str) -> None:
        self._owners = [o for o in self._owners if o != address]
        self._rebuild()

    def _rebuild(self) -> None:
        for grid in (self.list, self.refused_list):
            while grid.count():
                item = grid.takeAt(0)
                if item.widget() is not None:
                    item.widget().deleteLater()
        self.remove_buttons, self.allow_buttons = {}, {}
        if not self._owners:
            self.list.addWidget(QLabel("None yet: the first web GUI that connects is asked about."), 0, 0)
        for row, owner in enumerate(self._owners):
            self.list.addWidget(_address_label(checksummed(owner)), row, 0)
            button = QPushButton("Remove")
            button.setToolTip(f"Stop serving {owner}")
            button.clicked.connect(lambda _c=False, o=owner: self.remove(o))
            self.list.addWidget(button, row, 1)
            self.remove_buttons[owner] = button
        owners = {normalize_address(o) for o in self._owners}
        refused = [r for r in self._refused if normalize_address(r.address) not in owners]
        for row, refusal in enumerate(refused):
            self.refused_list.addWidget(_address_label(refusal.describe()), row, 0)
            button = QPushButton("Allow")
            button.clicked.connect(lambda _c=False, a=refusal.address: self.add(a))
            self.refused_list.addWidget(button, row, 1)
            self.allow_buttons[refusal.address] = button
        self.refused_title.setVisible(bool(refused))
