"""Where Flowork's help and releases are online: opened only when the user asks (Help, Check
for updates), never fetched in the background."""

from __future__ import annotations

HOME_URL = "https://flowork.cloud"
HELP_URL = "https://github.com/flowork-dev/flowork-desktop#readme"    # the README
RELEASES_URL = "https://github.com/flowork-dev/flowork-desktop/releases/latest"
