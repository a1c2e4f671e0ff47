"""Flowork Core Engine: the local workflow engine the Flowork web GUI drives over a WebSocket."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("flowork-desktop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
