"""PyInstaller entry point of the `flowork-engine` executable (the headless engine; see build.spec)."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start a second engine
    from engine.cli import main

    raise SystemExit(main())
