"""Automations: rules that start a preset's run while nobody is at the GUI (schedules, webhooks,
folder watches) and the global error workflow.

They start runs only through the runtime's public start call (see `launch.py`, the one place
that knows it), like a client would; the rules themselves live in `engine/store/triggers.py`.
"""
