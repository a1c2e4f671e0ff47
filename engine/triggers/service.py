"""Automations: the rules of every owner, kept live (timers, the webhook server, folder
watches), synced when presets are saved or deleted, and listed to owners and the tray.

A triggered run executes the preset's latest saved version from the trigger node, with the
trigger's event as initial payload, as the preset's owner (so its events reach the owner's
connections like any run), recorded with `started_by = {"kind", "rule_id"}`. A rule that cannot
work (bad settings, a folder no longer shared, a module removed) is disabled with a stated
reason; nothing here may take the engine down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from engine.events import Delivery
from engine.protocol.errors import EngineError, ErrorCode
from engine.runtime.job_keys import new_wire_id
from engine.store.triggers import RuleRecord, RuleSpec, RuleState, TriggersStore
from engine.triggers import webhooks
from engine.triggers.launch import RunEnd, RuntimeStarter
from engine.triggers.options import RuleError
from engine.triggers.overlap import Fire, OverlapGate
from engine.triggers.rules import ActiveRule, check_folder, node_name, parse, trigger_specs
from engine.triggers.schedule import describe_time
from engine.triggers.watches import FolderWatch

log = logging.getLogger(__name__)

PAUSED_FLAG = "paused"
MISFIRE_GRACE_S = 60.0      # a fire later than this counts as missed (suspend, engine down)
MAX_TIMER_S = 60.0          # timers are re-armed at least this often (clock changes)
STATE_FLUSH_S = 1.0
PUSH_DELAY_S = 0.5


@dataclass(frozen=True)
class WebhookConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 12346
    max_body: int = 1024 * 1024


class Automations:
    def __init__(self, *, store: TriggersStore, presets: Any, find_component: Callable[[str], Any],
                 shared_folders: Any, starter: RuntimeStarter, variables: Any,
                 publish: Callable[[str, dict[str, Any], Delivery], None],
                 webhook: WebhookConfig) -> None:
        self._store = store
        self._presets = presets
        self._find = find_component
        self._shared = shared_folders
        self._starter = starter
        self._variables = variables
        self._publish = publish
        self.webhook_config = webhook
        self.rules: dict[str, ActiveRule] = {}
        self._workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self._versions: dict[tuple[str, str], int] = {}  # the preset version each sync followed
        self._tokens: dict[bytes, str] = {}       # sha256(token) -> rule_id
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watches: dict[str, FolderWatch] = {}
        self._states: dict[str, RuleState] = {}
        self._push_pending: set[str] = set()
        self._push_handle: asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer: asyncio.Task[None] | None = None
        self.webhook_server: webhooks.WebhookServer | None = None
        self.webhook_error: str | None = None
        self.paused = False
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.paused = (await self._store.flag(PAUSED_FLAG)) == "1"
        records = await self._store.all()
        await self._reconcile(records)
        self._running = True
        if self.webhook_config.enabled:
            await self._start_webhooks()
        now = time.time()
        for record in await self._store.all():
            await self._activate(record, starting=now)
        self._writer = asyncio.create_task(self._write_states_forever(), name="automation-states")
        log.info("automations: %d rule(s), %d active%s", len(self.rules),
                 sum(r.active for r in self.rules.values()), ", paused" if self.paused else "")

    async def stop(self) -> None:
        self._running = False
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for watch in list(self._watches.values()):
            await watch.stop()
        self._watches.clear()
        if self.webhook_server is not None:
            await self.webhook_server.stop()
            self.webhook_server = None
        for rule in self.rules.values():
            rule.gate.drop_queued()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        await self._flush_states()
        if self._push_handle is not None:
            self._push_handle.cancel()

    def essential_tasks(self) -> dict[str, "asyncio.Task[Any] | None"]:
        """Tasks whose end means the automations no longer work (the Engine watches them)."""
        return {"the automations' state writer": self._writer}

    async def _start_webhooks(self) -> None:
        config = self.webhook_config
        server = webhooks.WebhookServer(config.host, config.port, config.max_body, self._webhook)
        try:
            await server.start()
        except OSError as exc:
            self.webhook_error = (f"The webhook server cannot listen on {config.host}:{config.port} "
                                  f"({exc.strerror or exc}); webhooks are off until that is fixed "
                                  f"(--webhook-port chooses another port).")
            log.error("%s", self.webhook_error)
            return
        self.webhook_server = server
        log.info("webhooks on %s", server.base_url)

    async def _reconcile(self, records: list[RuleRecord]) -> None:
        """Rules whose preset changed or vanished while they were not synced (a crash between
        the preset's save and the rules' sync) follow the preset's latest version now."""
        seen: set[tuple[str, str]] = set()
        for record in records:
            key = (record.owner, record.preset_name)
            if key in seen:
                continue
            seen.add(key)
            found = await self._presets.load(record.owner, record.preset_name)
            if found is None:
                await self._store.remove_preset(*key)
                continue
            version, workflow = found
            self._workflows[key] = workflow
            if version != record.preset_version:
                await self._store.sync_preset(record.owner, record.preset_name, version,
                                              trigger_specs(workflow, self._find))

    # -- presets -----------------------------------------------------------------------------

    async def check_workflow(self, workflow: dict[str, Any]) -> list[RuleSpec]:
        """The preset's trigger nodes as rule specs; EngineError naming the node and field
        when one cannot work, so that nothing is saved."""
        specs = trigger_specs(workflow, self._find)
        for spec in specs:
            name = node_name(workflow, spec.node_id)
            try:
                # Off the loop: a time zone seen for the first time is read from disk.
                parsed = await asyncio.to_thread(parse, spec.kind, spec.config, time.time())
            except RuleError as exc:
                raise EngineError(ErrorCode.INVALID_FIELD, f"The trigger node '{name}' cannot "
                                  f"work: {exc}. Nothing was saved.", field=exc.field,
                                  node_id=spec.node_id) from None
            if parsed.watch is not None:
                try:
                    await asyncio.to_thread(check_folder, self._shared, parsed.watch.folder)
                except EngineError as exc:
                    raise EngineError(exc.code, f"The trigger node '{name}' cannot watch "
                                      f"{parsed.watch.folder}: {exc.message} Only folders inside "
                                      f"your shared folders can be watched. Nothing was saved.",
                                      field="folder", node_id=spec.node_id) from None
        return specs

    async def preset_saved(self, owner: str, name: str, version: int, workflow: dict[str, Any],
                           specs: list[RuleSpec]) -> None:
        key = (owner, name)
        if version < self._versions.get(key, 0):
            return  # a newer save of the same preset already synced its rules (two saves raced)
        self._versions[key] = version
        had = any(r.record.preset_name == name and r.owner == owner for r in self.rules.values())
        if not specs and not had:
            return
        self._workflows[key] = workflow
        rules, removed = await self._store.sync_preset(owner, name, version, specs)
        for rule_id in removed:
            await self._deactivate(rule_id, forget=True)
        for record in rules:
            await self._deactivate(record.rule_id)
            await self._activate(record)
        if not rules:
            self._workflows.pop(key, None)
        self._changed(owner)

    async def preset_deleted(self, owner: str, name: str) -> None:
        removed = await self._store.remove_preset(owner, name)
        self._workflows.pop((owner, name), None)
        self._versions.pop((owner, name), None)
        for rule_id in removed:
            await self._deactivate(rule_id, forget=True)
        if removed:
            self._changed(owner)

    async def roots_changed(self) -> None:
        """Shared folders changed: watches outside them stop, with a reason."""
        for rule in list(self.rules.values()):
            if rule.record.kind == "file_watch" and rule.active and rule.parsed and rule.parsed.watch:
                try:
                    await asyncio.to_thread(check_folder, self._shared, rule.parsed.watch.folder)
                except EngineError as exc:
                    await self._disable(rule, f"its folder is no longer shared ({exc.message})")

    # -- what owners and the tray see ----------------------------------------------------------

    def listing(self, owner: str | None = None) -> list[dict[str, Any]]:
        return [self.describe(rule) for rule in self.rules.values()
                if owner is None or rule.owner == owner]

    def describe(self, rule: ActiveRule) -> dict[str, Any]:
        record = rule.record
        state = self._states.get(record.rule_id)
        last_job = state.last_job_id if state and "last_job_id" in state.fields else record.last_job_id
        last_status = state.last_status if state and "last_status" in state.fields else record.last_status
        last_at = state.last_at if state and "last_at" in state.fields else record.last_at
        item: dict[str, Any] = {
            "rule_id": record.rule_id, "preset_name": record.preset_name,
            "node_id": record.node_id, "node_name": node_name(
                self._workflows.get((record.owner, record.preset_name)), record.node_id),
            "module_id": record.module_id, "kind": record.kind, "summary": rule.summary(),
            "enabled": record.enabled and rule.problem is None,
            "next_run": describe_time(rule.next_run) if rule.active and not self.paused else None,
            "last_run": ({"job_id": last_job, "status": last_status, "at": describe_time(last_at)}
                         if last_job else None),
            "owner": record.owner,
        }
        if record.kind == "webhook":
            item["webhook_url"] = (self.webhook_server.base_url + record.token
                                   if self.webhook_server is not None and record.token else None)
        if rule.problem is not None:
            item["disabled_reason"] = rule.problem
        return item

    def frame(self, owner: str) -> dict[str, Any]:
        items = self.listing(owner)
        for item in items:
            item.pop("owner", None)
        return {"type": "triggers_list_response", "triggers": items, "paused": self.paused}

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Called (on the loop) after any change of any rule: the tray refreshes its menu."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, owner: str | None) -> None:
        """Push the owner's list soon (coalesced), and tell the tray."""
        owners = {owner} if owner else {r.owner for r in self.rules.values()}
        self._push_pending |= owners
        if self._push_handle is None:
            self._push_handle = asyncio.get_running_loop().call_later(PUSH_DELAY_S, self._push)

    def _push(self) -> None:
        self._push_handle = None
        pending, self._push_pending = self._push_pending, set()
        for owner in pending:
            self._publish(owner, self.frame(owner), Delivery.LATEST)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001 - a faulty listener must not stop the others
                log.exception("automation listener failed")

    async def set_enabled(self, owner: str | None, rule_id: str, enabled: bool) -> ActiveRule:
        rule = self.rules.get(rule_id)
        if rule is None or (owner is not None and rule.owner != owner):
            raise EngineError.not_found(f"The automation '{rule_id}'")
        await self._store.set_enabled(rule_id, enabled)
        records = {r.rule_id: r for r in await self._store.all()}
        await self._deactivate(rule_id)
        await self._activate(records[rule_id])
        self._changed(rule.owner)
        return self.rules[rule_id]

    async def set_paused(self, paused: bool) -> None:
        """Pause or resume every automation (kept across restarts). Fires while paused are
        dropped, not caught up."""
        await self._store.set_flag(PAUSED_FLAG, "1" if paused else "0")
        self.paused = paused
        if not paused:
            now = time.time()
            for rule in self.rules.values():
                if rule.active and rule.parsed and rule.parsed.schedule is not None:
                    self._arm(rule, rule.parsed.schedule.next_after(now))
        self._changed(None)

    @property
    def webhook_base_url(self) -> str | None:
        return self.webhook_server.base_url if self.webhook_server is not None else None

    # -- activating rules --------------------------------------------------------------------

    async def _activate(self, record: RuleRecord, starting: float | None = None) -> None:
        key = (record.owner, record.preset_name)
        old = self.rules.get(record.rule_id)
        if old is not None:  # a re-saved or re-enabled rule keeps counting the runs still going
            gate = old.gate
            gate.policy = _policy_or_default(record)
        else:
            gate = OverlapGate(_policy_or_default(record),
                               lambda end, rid=record.rule_id: self._run_ended(rid, end))
        rule = ActiveRule(record, None, gate, problem=record.disabled_reason)
        self.rules[record.rule_id] = rule
        if record.disabled_reason is not None:
            return
        problem = None
        try:
            rule.parsed = await asyncio.to_thread(parse, record.kind, record.config, record.created_at)
            gate.policy = rule.parsed.policy
        except RuleError as exc:
            problem = f"its settings cannot work: {exc}"
        if problem is None and self._find(record.module_id) is None:
            problem = f"its module '{record.module_id}' is no longer installed"
        if problem is None and record.kind == "webhook" and not record.token:
            problem = "its webhook token cannot be read (the engine's key changed); save the preset again"
        if problem is None and key not in self._workflows:
            found = await self._presets.load(record.owner, record.preset_name)
            if found is None:
                problem = "its preset no longer exists"
            else:
                self._workflows[key] = found[1]
        if problem is None and rule.parsed and rule.parsed.watch is not None:
            try:
                rule.folder = await asyncio.to_thread(check_folder, self._shared, rule.parsed.watch.folder)
            except EngineError as exc:
                problem = f"its folder is not inside the shared folders ({exc.message})"
        if problem is not None:
            await self._disable(rule, problem)
            return
        if not record.enabled:
            return
        assert rule.parsed is not None
        if record.kind == "webhook" and record.token:
            self._tokens[webhooks.token_key(record.token)] = record.rule_id
        elif rule.parsed.schedule is not None:
            now = time.time()
            if starting is not None:
                self._misfire_check(rule, starting)
            self._arm(rule, rule.parsed.schedule.next_after(now))
        elif rule.parsed.watch is not None and rule.folder is not None:
            watch = FolderWatch(rule.folder, rule.parsed.watch,
                                lambda changes, rid=record.rule_id: self._files_changed(rid, changes),
                                lambda reason, rid=record.rule_id: self._spawn(self._watch_failed(rid, reason)),
                                ignore=self._shared.protected_folders)
            self._watches[record.rule_id] = watch
            watch.start()

    async def _deactivate(self, rule_id: str, *, forget: bool = False) -> None:
        rule = self.rules.get(rule_id)
        handle = self._timers.pop(rule_id, None)
        if handle is not None:
            handle.cancel()
        watch = self._watches.pop(rule_id, None)
        if watch is not None:
            await watch.stop()
        if rule is not None and rule.record.token:
            self._tokens.pop(webhooks.token_key(rule.record.token), None)
        if rule is not None:
            rule.next_run = None
            if forget:
                rule.gate.drop_queued()
                del self.rules[rule_id]
                self._states.pop(rule_id, None)

    async def _disable(self, rule: ActiveRule, reason: str) -> None:
        """A broken rule stops, says why, and stays off until its preset is saved again."""
        log.warning("automation %s (%s, node %s) is disabled: %s", rule.rule_id,
                    rule.record.preset_name, rule.record.node_id, reason)
        rule.problem = reason
        await self._deactivate(rule.rule_id)
        try:
            await self._store.set_enabled(rule.rule_id, False, reason)
        except EngineError as exc:
            log.error("could not record that automation %s is disabled: %s", rule.rule_id, exc)
        self._changed(rule.owner)

    async def _watch_failed(self, rule_id: str, reason: str) -> None:
        rule = self.rules.get(rule_id)
        if rule is not None and self._running:
            await self._disable(rule, reason)

    # -- schedules ---------------------------------------------------------------------------

    def _misfire_check(self, rule: ActiveRule, now: float) -> None:
        """A fire that fell while the engine was down: run once now, or skip (the policy)."""
        assert rule.parsed is not None and rule.parsed.schedule is not None
        since = rule.record.last_fire if rule.record.last_fire is not None else rule.record.updated_at
        missed = rule.parsed.schedule.next_after(since)
        if missed is None or missed > now - 1.0:
            return
        if rule.parsed.policy.misfire == "run_once" and not self.paused:
            log.info("automation %s missed its fire at %s while the engine was down; running it "
                     "once now", rule.rule_id, describe_time(missed))
            self._spawn(self._fire_schedule(rule.rule_id, missed, misfire=True))
        else:
            log.info("automation %s missed its fire at %s while the engine was down (skipped)",
                     rule.rule_id, describe_time(missed))

    def _arm(self, rule: ActiveRule, due: float | None) -> None:
        old = self._timers.pop(rule.rule_id, None)
        if old is not None:
            old.cancel()
        rule.next_run = due
        if due is None or not self._running:
            return
        loop = asyncio.get_running_loop()
        delay = due - time.time()
        if delay > MAX_TIMER_S:
            self._timers[rule.rule_id] = loop.call_later(MAX_TIMER_S, self._rearm, rule.rule_id)
        else:
            self._timers[rule.rule_id] = loop.call_at(loop.time() + max(delay, 0.0), self._due, rule.rule_id, due)

    def _rearm(self, rule_id: str) -> None:
        rule = self.rules.get(rule_id)
        if rule is not None and rule.active and rule.next_run is not None:
            self._arm(rule, rule.next_run)

    def _due(self, rule_id: str, due: float) -> None:
        self._timers.pop(rule_id, None)
        rule = self.rules.get(rule_id)
        if rule is None or not rule.active or rule.parsed is None or rule.parsed.schedule is None:
            return
        now = time.time()
        if now < due - 0.001:  # the wall clock went back: wait for the real time
            self._arm(rule, due)
            return
        self._arm(rule, rule.parsed.schedule.next_after(max(due, now)))
        if self.paused:
            return
        if now - due > MISFIRE_GRACE_S and rule.parsed.policy.misfire == "skip":
            log.info("automation %s fired %.0f s late (the machine slept?); skipped", rule_id, now - due)
            return
        self._spawn(self._fire_schedule(rule_id, due))

    async def _fire_schedule(self, rule_id: str, due: float, *, misfire: bool = False) -> None:
        rule = self.rules.get(rule_id)
        if rule is None:
            return
        fired = time.time()
        self._state(rule_id).last_fire = due
        self._state(rule_id).fields.add("last_fire")
        event = {"trigger": "schedule", "scheduled_for": due, "scheduled_for_iso": describe_time(due),
                 "fired_at": fired}
        if misfire:
            event["misfire"] = True
        await self.fire(rule, event)

    # -- file watches --------------------------------------------------------------------------

    def _files_changed(self, rule_id: str, changes: list[tuple[str, Path]]) -> None:
        rule = self.rules.get(rule_id)
        if rule is None or not rule.active or self.paused:
            return
        self._spawn(self._fire_files(rule, changes))

    async def _fire_files(self, rule: ActiveRule, changes: list[tuple[str, Path]]) -> None:
        for kind, path in changes:
            try:  # a path reached through a symlink that leads out of the shared folders: ignored
                await asyncio.to_thread(self._shared.resolve_inside, str(path), must_exist=kind != "deleted")
            except EngineError:
                continue
            await self.fire(rule, {"trigger": "file_watch", "kind": kind, "path": str(path),
                                   "name": path.name, "folder": str(rule.folder), "at": time.time()})

    # -- webhooks ------------------------------------------------------------------------------

    async def _webhook(self, token: str, sub_path: str, request: web.Request) -> web.StreamResponse:
        rule_id = self._tokens.get(webhooks.token_key(token))
        rule = self.rules.get(rule_id) if rule_id else None
        if rule is None or rule.record.token is None or not webhooks.secret_ok(rule.record.token, token):
            raise web.HTTPNotFound()
        options = rule.parsed.webhook if rule.parsed else None
        if options is None or not rule.active:
            return webhooks.plain(404 if options is None else 503, "This automation is disabled.")
        if self.paused:
            return webhooks.plain(503, "Automations are paused on this engine.")
        if options.method != "ANY" and request.method != options.method:
            return webhooks.plain(405, f"This webhook accepts {options.method} only.")
        hidden = options.header_name if options.auth == "header" else None
        try:
            event, body = await webhooks.read_event(request, sub_path, hidden)
        except webhooks.BadRequest as exc:
            return webhooks.plain(400, str(exc))
        if options.auth != "none":
            secret = await self._secret(rule, options.secret)
            if secret is None:
                return webhooks.plain(500, "The webhook's secret variable is not defined; nothing was started.")
            ok = (webhooks.signature_ok(secret, body, request.headers.get(webhooks.SIGNATURE_HEADER))
                  if options.auth == "hmac_sha256" else
                  webhooks.secret_ok(secret, request.headers.get(options.header_name)))
            if not ok:
                return webhooks.plain(401, "The webhook secret or signature is wrong; nothing was started.")
        try:
            fire = await self.fire(rule, event)
        except EngineError as exc:
            return webhooks.json_response(500, {"error": exc.message})
        if fire.outcome == "skipped":
            return webhooks.json_response(429, {"error": f"Not started: {fire.reason}."})
        if options.respond == "immediately" or fire.ended is None:
            return webhooks.json_response(202, {"job_id": fire.job_id, "status": fire.outcome})
        try:
            async with asyncio.timeout(options.response_timeout_s):
                end = await asyncio.shield(fire.ended)
        except TimeoutError:
            return webhooks.json_response(504, {"job_id": fire.job_id, "error":
                                                f"The run did not end within {options.response_timeout_s:g} s; "
                                                f"it goes on."})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a queued run that could not start
            return webhooks.json_response(500, {"job_id": fire.job_id, "error": str(exc)})
        if end.status == "SUCCEEDED":
            return webhooks.json_response(200, end.data if end.data is not None else {})
        return webhooks.json_response(500, {"job_id": end.job_id, "status": end.status, "error": end.error})

    async def _secret(self, rule: ActiveRule, secret: str) -> str | None:
        if "{{" not in secret:
            return secret
        from engine.runtime.templating import Renderer, TemplateError
        try:
            value = Renderer(await self._variables.resolve(rule.owner)).render(secret, None)
        except TemplateError:
            return None
        return str(value) if value not in (None, "") else None

    # -- firing ----------------------------------------------------------------------------------

    async def fire(self, rule: ActiveRule, event: dict[str, Any]) -> Fire:
        """Start (or queue, or skip) a run of the rule's preset with `event` as its data."""
        record = rule.record
        event = {**event, "rule_id": record.rule_id, "preset_name": record.preset_name}
        kind = record.kind
        started_by: dict[str, Any] = {"kind": kind, "rule_id": record.rule_id}
        keep = rule.gate.policy.keep_history
        if keep != "all":
            started_by["keep"] = keep

        async def launch(job_id: str, data: Any) -> "asyncio.Future[RunEnd]":
            workflow = self._workflows.get((record.owner, record.preset_name))
            if workflow is None:
                raise EngineError.not_found(f"The preset '{record.preset_name}'")
            return await self._starter.start(
                record.owner, job_id, workflow, preset_name=record.preset_name,
                start_node_id=record.node_id, initial_payload={"data": data, "history": []},
                started_by=started_by)

        try:
            fire = await rule.gate.fire(new_wire_id(_JOB_PREFIX[kind]), event, launch)
        except EngineError as exc:
            # The saved preset cannot run (a module removed, a graph the runtime refuses): it
            # would fail the same way at every fire, so the rule stops and says why.
            if exc.code != ErrorCode.CONFLICT:
                await self._disable(rule, f"its preset cannot run: {exc.message}")
            else:
                log.warning("automation %s could not start a run: %s", record.rule_id, exc.message)
            raise
        if fire.outcome == "skipped":
            log.info("automation %s: %s", record.rule_id, fire.reason)
        elif fire.job_id is not None:
            state = self._state(record.rule_id)
            state.last_job_id, state.last_status, state.last_at = fire.job_id, (
                "RUNNING" if fire.outcome == "started" else "QUEUED"), time.time()
            state.fields |= {"last_job_id", "last_status", "last_at"}
            self._changed(record.owner)
        return fire

    def _run_ended(self, rule_id: str, end: RunEnd) -> None:
        rule = self.rules.get(rule_id)
        if rule is None:
            return
        state = self._state(rule_id)
        state.last_job_id, state.last_status, state.last_at = end.job_id, end.status, time.time()
        state.fields |= {"last_job_id", "last_status", "last_at"}
        self._changed(rule.owner)

    def _state(self, rule_id: str) -> RuleState:
        state = self._states.get(rule_id)
        if state is None:
            state = self._states[rule_id] = RuleState()
        return state

    async def _write_states_forever(self) -> None:
        while True:
            await asyncio.sleep(STATE_FLUSH_S)
            await self._flush_states()

    async def _flush_states(self) -> None:
        pending = {rule_id: state for rule_id, state in self._states.items() if state.fields}
        if not pending:
            return
        snapshot = {rule_id: RuleState(s.last_fire, s.last_job_id, s.last_status, s.last_at, set(s.fields))
                    for rule_id, s in pending.items()}
        try:
            await self._store.write_states(snapshot)
        except EngineError as exc:
            log.warning("could not record the automations' last runs: %s", exc.message)
            return
        for rule_id, state in snapshot.items():
            rule = self.rules.get(rule_id)
            if rule is not None:
                rule.record = _with_state(rule.record, state)
            live = self._states.get(rule_id)
            if live is not None and (live.last_fire, live.last_job_id, live.last_status, live.last_at) == \
                    (state.last_fire, state.last_job_id, state.last_status, state.last_at):
                live.fields.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, EngineError):
                log.error("an automation task failed", exc_info=exc)


_JOB_PREFIX = {"schedule": "schedule", "webhook": "webhook", "file_watch": "watch"}


def _policy_or_default(record: RuleRecord) -> Any:
    from engine.triggers.options import Policy, policy
    try:
        return policy(record.config)
    except RuleError:
        return Policy()


def _with_state(record: RuleRecord, state: RuleState) -> RuleRecord:
    from dataclasses import replace
    changes = {name: getattr(state, name) for name in state.fields}
    return replace(record, **changes)
