"""`flowork-engine`: the headless engine. Every option also reads FLOWORK_* variables and the
data folder's config.json; see README.md. Failures end with one sentence and exit code 2 (bad
options) or 1 (cannot start), never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, Sequence

from engine import __version__
from engine.config import ConfigError, EngineConfig, OPTIONS, ensure_engine_id, load_config, write_config_value

log = logging.getLogger("engine")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowork-engine",
                                description="Run the Flowork Core Engine headless.",
                                argument_default=argparse.SUPPRESS)
    env = {name: var for name, (var, _) in OPTIONS.items()}
    p.add_argument("--host", help=f"address to listen on (default 127.0.0.1; ${env['host']})")
    p.add_argument("--port", help=f"port to listen on (default 12345, 0 = any free port; ${env['port']})")
    p.add_argument("--engine-id", dest="engine_id",
                   help=f"the engine ID the web GUI connects with (default: generated once and kept; ${env['engine_id']})")
    p.add_argument("--data-dir", dest="data_dir", help=f"where presets, settings and history live (${env['data_dir']})")
    p.add_argument("--log-dir", dest="log_dir", help=f"where the rotating log file goes (${env['log_dir']})")
    p.add_argument("--owner", dest="owners", action="append",
                   help=f"an address allowed to control the engine; repeat for more (${env['owners']}, comma-separated)")
    p.add_argument("--root", dest="roots", action="append",
                   help=f"a folder shared for file browsing; repeat for more (${env['roots']}, separated like PATH)")
    p.add_argument("--status-interval", dest="status_interval",
                   help=f"seconds between engine_status_update frames (default 10; ${env['status_interval']})")
    p.add_argument("--origin", dest="origins", action="append",
                   help=f"an allowed browser Origin; repeat for more (default: the Flowork web GUI and loopback; ${env['origins']})")
    p.add_argument("--log-level", dest="log_level",
                   help=f"the engine log's level: DEBUG, INFO (default), WARNING or ERROR; job log lines "
                        f"are written at DEBUG (${env['log_level']})")
    p.add_argument("--webhook-host", dest="webhook_host",
                   help=f"address of the automations' webhook server (default 127.0.0.1; ${env['webhook_host']})")
    p.add_argument("--webhook-port", dest="webhook_port",
                   help=f"port of the webhook server (default 12346, 0 = any free port; ${env['webhook_port']})")
    p.add_argument("--no-webhooks", dest="webhooks", action="store_const", const=False,
                   help=f"run no webhook server (${env['webhooks']}=false)")
    p.add_argument("--suspend-after-s", dest="suspend_after_s",
                   help=f"seconds a job that only waits (approval, delay, pause) stays in memory before "
                        f"it is kept in the database only (default 65; ${env['suspend_after_s']})")
    p.add_argument("--stop-grace-s", dest="stop_grace_s",
                   help=f"seconds a stop lets running nodes finish before the jobs are checkpointed "
                        f"for the next start (default 5; ${env['stop_grace_s']})")
    p.add_argument("--no-checkpoints", dest="checkpoints", action="store_const", const=False,
                   help=f"keep jobs in memory only: a restart fails them (${env['checkpoints']}=false)")
    p.add_argument("--save-owners", action="store_true", default=False,
                   help="also store the --owner addresses in the data folder's config.json")
    p.add_argument("--version", action="version", version=f"flowork-engine {__version__}")
    return p


def parse_config(argv: Sequence[str] | None = None) -> tuple[EngineConfig, bool]:
    args = vars(build_parser().parse_args(argv))
    save_owners = bool(args.pop("save_owners", False))
    cli: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    for list_option in ("owners", "roots", "origins"):
        if list_option in cli:  # accept both repetition and comma-separated values
            cli[list_option] = [part for item in cli[list_option] for part in str(item).split(",") if part.strip()]
    return load_config(cli), save_owners


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, save_owners = parse_config(argv)
    except ConfigError as exc:
        print(f"flowork-engine: {exc}", file=sys.stderr)
        return 2
    try:
        config = ensure_engine_id(config)
        if save_owners:
            write_config_value(config.data_dir, "owners", list(config.owners))
    except (ConfigError, OSError) as exc:
        print(f"flowork-engine: the data folder {config.data_dir} is not usable: "
              f"{getattr(exc, 'strerror', None) or exc}.", file=sys.stderr)
        return 1
    from engine.logging_setup import setup_logging
    log_file = setup_logging(config.resolved_log_dir(), level=config.log_level)
    try:
        return asyncio.run(run_headless(config, log_file=str(log_file) if log_file else None))
    except KeyboardInterrupt:
        return 0


async def run_headless(config: EngineConfig, *, log_file: str | None = None) -> int:
    """Run until SIGINT/SIGTERM (0) or until the engine breaks (1); print the URL the web GUI
    needs once ready."""
    from engine.app import Engine, EngineStartError
    from engine.logging_setup import FILE_ONLY

    engine = Engine(config)
    engine.on_owners_changed = lambda owners: asyncio.to_thread(
        write_config_value, config.data_dir, "owners", owners)
    # Installed before starting, so that a signal during start-up still ends in a clean stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: KeyboardInterrupt ends asyncio.run
            pass
    try:
        await engine.start()
    except EngineStartError as exc:
        log.error("%s", exc, extra=FILE_ONLY)
        print(f"flowork-engine: {exc}", file=sys.stderr)
        return 1
    if not len(engine.owners):
        log.warning("no owner address is allowed yet: every frame will be refused. "
                    "Start with --owner 0xYOUR_ADDRESS (or set FLOWORK_OWNERS).")
    print(f"Flowork engine {engine.version} ready.", flush=True)
    print(f"Web GUI URL: {engine.url}", flush=True)
    print(f"Data: {config.data_dir}   Logs: {log_file or 'terminal only'}", flush=True)
    asked = asyncio.ensure_future(stop.wait())
    broke = asyncio.ensure_future(engine.wait_failed())
    try:
        await asyncio.wait((asked, broke), return_when=asyncio.FIRST_COMPLETED)
    finally:
        asked.cancel()
        log.info("shutting down")
        await engine.stop()
    reason = broke.result() if broke.done() and not broke.cancelled() else None
    if reason:
        # A broken engine exits, so that whatever runs it (systemd, a container) starts it again.
        print(f"flowork-engine: stopped because {reason}; the log has the details.", file=sys.stderr)
        return 1
    return 0
