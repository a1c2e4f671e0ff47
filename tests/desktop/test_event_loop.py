"""The app's event loop (desktop/event_loop.py): asyncio's ready queue on Qt's loop. Callbacks
run in order, each once, and a flood of them still leaves Qt its turns."""

from __future__ import annotations

import asyncio
import threading
import time

from PySide6.QtCore import QTimer

from desktop.event_loop import DesktopEventLoop
from tests.desktop.conftest import wait_until


async def test_callbacks_run_once_in_order_and_cancelled_ones_never() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, DesktopEventLoop)
    ran: list[int] = []
    handles = [loop.call_soon(ran.append, i) for i in range(10)]
    handles[3].cancel()
    await wait_until(lambda: len(ran) == 9, what="nine callbacks")
    await asyncio.sleep(0.05)
    assert ran == [0, 1, 2, 4, 5, 6, 7, 8, 9]


async def test_a_failing_callback_is_reported_and_the_next_ones_still_run() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    ran: list[str] = []
    try:
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(ran.append, "after")
        await wait_until(lambda: ran == ["after"], what="the callback after the failing one")
    finally:
        loop.set_exception_handler(None)
    assert isinstance(reported[0]["exception"], ZeroDivisionError)


async def test_a_flood_of_ready_callbacks_leaves_qt_its_turns() -> None:
    """200 callbacks ready at once, each about 1 ms of work: 25 times the slice. Qt's own
    timer still fires many times before the last has run (run all at once, as one batch or as
    200 zero-timers due in one pass of Qt's loop, it would not fire until they are done)."""
    loop = asyncio.get_running_loop()
    order: list[str] = []
    done = asyncio.Event()

    def work(last: bool) -> None:
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass
        order.append("callback")
        if last:
            done.set()

    ticks = QTimer()
    ticks.setInterval(1)
    ticks.timeout.connect(lambda: order.append("qt"))
    ticks.start()
    try:
        for i in range(200):
            loop.call_soon(work, i == 199)
        await asyncio.wait_for(done.wait(), 30)
    finally:
        ticks.stop()
    first, last = order.index("callback"), len(order) - 1 - order[::-1].index("callback")
    during = order[first:last].count("qt")
    assert during >= 5, order  # 200 ms of work / SLICE_S: about 25 turns for Qt


async def test_callbacks_from_other_threads_arrive_in_order() -> None:
    loop = asyncio.get_running_loop()
    got: list[int] = []

    def send() -> None:
        for i in range(100):
            loop.call_soon_threadsafe(got.append, i)
    thread = threading.Thread(target=send)
    thread.start()
    await asyncio.to_thread(thread.join)
    await wait_until(lambda: len(got) == 100, what="100 callbacks from a thread")
    assert got == list(range(100))


def test_a_closed_loop_runs_nothing(qapp) -> None:
    loop = DesktopEventLoop(qapp)
    ran: list[int] = []
    loop.call_soon(ran.append, 1)
    loop.close()
    loop.call_soon(ran.append, 2)  # accepted and dropped, as qasync does after close
    qapp.processEvents()
    assert ran == [] and loop.is_closed()


async def test_callbacks_still_run_inside_a_nested_qt_loop() -> None:
    """A modal dialog's exec() runs a nested Qt loop inside a callback: what is scheduled
    meanwhile runs there (the batch being run does not hold it back)."""
    from PySide6.QtCore import QEventLoop as NestedLoop
    loop = asyncio.get_running_loop()
    got: list[str] = []
    nested = NestedLoop()

    def inside() -> None:
        got.append("inside")
        nested.quit()

    def modal() -> None:
        loop.call_soon(inside)
        QTimer.singleShot(5000, nested.quit)  # only if the callback never runs
        nested.exec()
        got.append("after")
    loop.call_soon(modal)
    loop.call_soon(got.append, "next")  # ready with it, runs after it
    await wait_until(lambda: "next" in got, what="the callbacks")
    assert got == ["inside", "after", "next"]
