"""`python -m desktop`: the same as the `flowork` command."""

from desktop.main import main

raise SystemExit(main())
