"""The event bus (engine/events.py): listeners of every event and of some frame types."""

from __future__ import annotations

from engine.events import Event, EventBus


def event(kind: str) -> Event:
    return Event("0xabc", {"type": kind})


def test_a_listener_of_some_types_hears_only_those_in_subscription_order() -> None:
    bus = EventBus()
    heard: list[tuple[str, str]] = []
    bus.subscribe(lambda e: heard.append(("every", e.frame["type"])))
    bus.subscribe(lambda e: heard.append(("status", e.frame["type"])), ("workflow_status_update",))
    bus.subscribe(lambda e: heard.append(("late", e.frame["type"])))
    for kind in ("CONNECTION_UPDATE", "workflow_status_update", "log"):
        bus.publish(event(kind))
    assert heard == [("every", "CONNECTION_UPDATE"), ("late", "CONNECTION_UPDATE"),
                     ("every", "workflow_status_update"), ("status", "workflow_status_update"),
                     ("late", "workflow_status_update"), ("every", "log"), ("late", "log")]


def test_unsubscribing_during_a_publish_is_safe_and_final() -> None:
    bus = EventBus()
    heard: list[str] = []
    stops: list = []

    def first(e: Event) -> None:
        heard.append("first")
        for stop in stops:
            stop()  # both go, while the bus is delivering

    stops.append(bus.subscribe(first, ("log",)))
    stops.append(bus.subscribe(lambda e: heard.append("second"), ("log",)))
    bus.publish(event("log"))
    assert heard == ["first", "second"]  # this publish had started with both
    bus.publish(event("log"))
    assert heard == ["first", "second"]
    stops[0]()  # a second call does nothing


def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus = EventBus()
    heard: list[str] = []

    def broken(e: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken, ("log",))
    bus.subscribe(lambda e: heard.append(e.frame["type"]))
    bus.publish(event("log"))
    assert heard == ["log"]
