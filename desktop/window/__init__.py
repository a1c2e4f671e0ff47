"""The Flowork window the tray opens: runs, a run's timeline, approvals, automations and the
engine's load. Everything it shows comes through the Engine's public API (engine.runs,
engine.approvals through the app's ApprovalsController, engine.status(), engine.automations)."""
