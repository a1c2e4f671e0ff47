"""PyInstaller entry point of the `flowork` executable (the tray app; see build.spec)."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start a second app
    from desktop.main import main

    raise SystemExit(main())
