"""Job log lines reach the GUI as `log` frames and the engine log only at DEBUG; the engine log's
level is an option (--log-level, FLOWORK_LOG_LEVEL, config.json) and a setting (log_level)."""

from __future__ import annotations

import logging

import pytest

from engine.cli import parse_config
from engine.client import EngineClient
from engine.config import ConfigError
from tests.runtime_support import final, node, run, workflow


async def test_job_lines_go_to_the_engine_log_at_debug_only(client: EngineClient,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="engine.jobs")
    _, events = await run(client, workflow([node("l", "log_message", message="hello there", level="WARN")], []))
    assert final(events)["status"] == "SUCCEEDED"
    assert [e["message"] for e in events if e["type"] == "log"] == ["hello there"]
    lines = [r for r in caplog.records if r.name == "engine.jobs" and "hello there" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.DEBUG] and "WARN" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.name == "engine.jobs" and r.levelno >= logging.INFO]


async def test_the_log_level_setting_changes_the_engine_log(client: EngineClient) -> None:
    root = logging.getLogger()
    before = root.level
    try:
        await client.request("save_settings", settings={"log_level": "debug"})
        assert root.level == logging.DEBUG
        await client.request("save_settings", settings={"log_level": "WARNING"})
        assert root.level == logging.WARNING
    finally:
        root.setLevel(before)


def test_the_log_level_option() -> None:
    config, _ = parse_config(["--log-level", "debug", "--data-dir", "/tmp/flowork-log-level-test"])
    assert config.log_level == "DEBUG"
    assert parse_config(["--data-dir", "/tmp/flowork-log-level-test"])[0].log_level == "INFO"
    with pytest.raises(ConfigError):
        parse_config(["--log-level", "chatty", "--data-dir", "/tmp/flowork-log-level-test"])
