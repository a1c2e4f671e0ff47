"""The workflow runtime: graphs, jobs, control, approvals, templating, history recording.

`runtime.Runtime` is the entry point the Engine creates; modules see only the module API in
engine/components/api.py (NodeContext, ModuleError).
"""
