"""What the tray says when the engine cannot run: the app's own sentences and the buttons that
fix each problem.

The engine's texts are written for its command line ("choose another port with --port"); a
person using the tray app has Settings and buttons instead. The engine's text still goes to
the log and to the dialog's details.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The buttons a problem may offer; the app maps each to its action.
OTHER_PORT = "other_port"        # label carries the port: "Use port 12346"
CHOOSE_FOLDER = "choose_folder"
RETRY = "retry"
RESTART = "restart"
OPEN_LOGS = "open_logs"
SETTINGS = "settings"

LABELS = {CHOOSE_FOLDER: "&Choose folder…", RETRY: "&Retry", RESTART: "&Restart engine",
          OPEN_LOGS: "Open &logs folder", SETTINGS: "&Settings…"}


@dataclass(frozen=True)
class Problem:
    title: str                       # the dialog's title (Qt adds "— Flowork")
    headline: str                    # a few words for the menu header and the tooltip's first line
    text: str                        # what happened, one sentence
    advice: str                      # what to do, naming the buttons offered
    actions: tuple[str, ...]
    detail: str = ""                 # the engine's own text


def describe_problem(reason: str, engine_text: str, *, port: int, data_dir: Path | str,
                     free_port: int | None = None, holder: str = "another program") -> Problem:
    """The sentences for `EngineSupervisor.error_reason` (see desktop/supervisor.py)."""
    if reason == "port_in_use":
        other = f"port {free_port}" if free_port else "another port"
        return Problem(
            "Port in use", f"port {port} is in use", f"Port {port} is already in use by {holder}.",
            f"The engine cannot listen there. Choose “Use {other}” (Open web GUI then passes the "
            f"new address to the web GUI), or close that program and choose Retry.",
            (OTHER_PORT, RETRY), engine_text)
    if reason == "data_dir":
        return Problem(
            "Data folder unusable", "cannot use its data folder", f"Flowork cannot use its data folder {data_dir}.",
            "It must be a folder you can write to. Choose another folder (the engine then keeps "
            "its workflows, variables and history there; nothing is moved), or fix this one's "
            "permissions and choose Retry.",
            (CHOOSE_FOLDER, RETRY, OPEN_LOGS), engine_text)
    if reason == "other":  # the address cannot be listened on (a reserved port, no such address)
        return Problem(
            "Engine cannot listen", f"cannot listen on port {port}", f"The engine cannot listen on port {port}.",
            "Choose another port in Settings (ports below 1024 are reserved on most systems), "
            "then Retry.",
            (SETTINGS, RETRY, OPEN_LOGS), engine_text)
    if reason == "gave_up":
        return Problem(
            "Engine stopped", "engine stopped", "The engine kept stopping unexpectedly, so Flowork stopped "
            "restarting it.",
            "The log has the cause. Choose Restart engine to try again.",
            (RESTART, OPEN_LOGS), engine_text)
    if reason == "crashed":
        return Problem("Engine restarting", "restarting after a failure…", "The engine stopped unexpectedly; Flowork "
                       "is restarting it.", "", (), engine_text)
    return Problem(
        "Engine error", "engine error", "The engine could not start.",
        "The log has the cause. Choose Retry once it is fixed.",
        (RETRY, OPEN_LOGS), engine_text)
