"""Before Stop engine, Restart engine or Quit while workflows run: say what becomes of them.

With durable jobs (issue 13) the engine's graceful stop keeps running workflows: each running
step gets a few seconds (the engine's `stop_grace_s`) to finish, then every job is saved and
continues when the engine starts again; approvals waiting for an answer are asked again then.
That is the dialog's main button. The other one stops the workflows instead (recorded as
stopped, their approvals withdrawn), the way every stop worked before.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget


@dataclass(frozen=True)
class Ending:
    """One of the three ways the engine goes away, in the words of its dialog."""

    verb: str        # the menu's and the main button's text (it keeps the workflows)
    doing: str       # "Quitting", the start of the explanation
    stop_verb: str   # the button that stops the workflows instead
    again: str       # when kept workflows continue

    @property
    def title(self) -> str:
        return f"{self.verb.replace('&', '')}?"


QUITTING = Ending("&Quit Flowork", "Quitting", "Quit and &stop workflows", "when Flowork starts again")
RESTARTING = Ending("&Restart engine", "Restarting", "Restart and &stop workflows",
                    "as soon as the engine is back")
STOPPING = Ending("S&top engine", "Stopping the engine", "Stop engine and &workflows",
                  "when the engine is started again")


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def question(ending: Ending, running: int, approvals: int, grace_s: float) -> tuple[str, str, str]:
    """(the headline, what the main button does and the other offers, the fine print)."""
    it = _plural(running, "it", "them")
    text = (f"1 workflow is running. It will continue {ending.again}." if running == 1 else
            f"{running} workflows are running. They will continue {ending.again}.")
    waits = "" if not approvals else _plural(
        approvals, " The approval waiting for your answer is kept and asked again then.",
        f" The {approvals} approvals waiting for your answer are kept and asked again then.")
    seconds = f"{grace_s:g} second{'s' if grace_s != 1 else ''}"
    saved = _plural(running, "the workflow is saved where it stands",
                    "the workflows are saved where they stand")
    withdrawn = "" if not approvals else _plural(approvals, ", and the approval withdrawn",
                                                 ", and the approvals withdrawn")
    info = (f"{ending.doing} keeps {it}: a step that is running gets up to {seconds} to finish, "
            f"then {saved}.{waits} To end {it} now instead (recorded as stopped{withdrawn}), "
            f"choose “{ending.stop_verb.replace('&', '')}”.")
    details = (f"A step still running after {seconds} is cut short. When the engine starts "
               f"again, a step that is safe to repeat runs again; any other is not repeated: "
               f"its workflow ends as failed (interrupted) and can be resumed from that step "
               f"with the engine's resume_job message. A delay ends at its original time. An "
               f"approval whose time limit passes while the engine is not running takes its "
               f"default answer.")
    return text, info, details


class ConfirmEndDialog(QMessageBox):
    confirmed = Signal()        # go on and keep the workflows (the engine suspends them)
    stop_chosen = Signal()      # go on and stop the workflows

    def __init__(self, ending: Ending, running: int, approvals: int, *, grace_s: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        text, info, details = question(ending, running, approvals, grace_s)
        self.setWindowTitle(ending.title)
        self.setIcon(QMessageBox.Icon.Question)
        self.setText(text)
        self.setInformativeText(info)
        self.setDetailedText(details)
        self.keep_button = self.addButton(ending.verb, QMessageBox.ButtonRole.AcceptRole)
        self.stop_button = self.addButton(ending.stop_verb, QMessageBox.ButtonRole.DestructiveRole)
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.cancel_button)  # Enter changes nothing
        self.setEscapeButton(self.cancel_button)
        self.keep_button.clicked.connect(self.confirmed.emit)
        self.stop_button.clicked.connect(self.stop_chosen.emit)
        self.setModal(False)
