"""`python -m engine` does what the `flowork-engine` console script does."""

from engine.cli import main

raise SystemExit(main())
