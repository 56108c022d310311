"""ScanSlots: the run's own concurrency against the cloud's quota (threads, no network)."""

from __future__ import annotations

import threading

import pytest

from crgate.errors import InterruptedRunError, ScanTimeoutError
from crgate.slots import ScanSlots
from crgate.timing import Deadline


def test_a_refusal_lowers_the_limit_to_the_slots_held_and_an_accepted_scan_raises_it_by_one():
    slots = ScanSlots(5, threading.Event())
    deadline = Deadline(5)
    for _ in range(3):
        slots.acquire(deadline)
    slots.refused()
    assert slots.limit == 3
    slots.accepted()
    assert slots.limit == 4
    for _ in range(5):
        slots.accepted()
    assert slots.limit == 5  # never above --concurrency


def test_a_refused_worker_asks_again_as_soon_as_one_of_the_runs_scans_ends():
    slots = ScanSlots(2, threading.Event())
    deadline = Deadline(30)
    slots.acquire(deadline)  # a scan that runs
    slots.acquire(deadline)  # a refused one
    woke = threading.Event()

    def refused_worker() -> None:
        slots.pause(60.0)  # a long backoff: only the ended scan can end it early
        woke.set()

    worker = threading.Thread(target=refused_worker)
    worker.start()
    assert not woke.wait(0.3)
    slots.release(scan_ended=True)
    worker.join(10)
    assert woke.is_set() and not worker.is_alive()


def test_one_ended_scan_wakes_one_refused_worker_and_a_never_started_one_wakes_none():
    slots = ScanSlots(4, threading.Event())
    deadline = Deadline(30)
    for _ in range(4):
        slots.acquire(deadline)
    woken: list[int] = []
    changed = threading.Condition()

    def refused_worker(number: int) -> None:
        slots.pause(60.0)
        with changed:
            woken.append(number)
            changed.notify_all()

    workers = [threading.Thread(target=refused_worker, args=(n,), daemon=True) for n in range(2)]
    for worker in workers:
        worker.start()
    slots.release(scan_ended=False)  # a worker that never started a scan frees no quota slot
    with changed:
        assert not changed.wait_for(lambda: woken, timeout=0.3)
    slots.release(scan_ended=True)
    with changed:
        assert changed.wait_for(lambda: woken, timeout=10)
        assert len(woken) == 1  # one freed slot, one probe: the other keeps its 60 s backoff
    slots.release(scan_ended=True)
    for worker in workers:
        worker.join(10)
    assert sorted(woken) == [0, 1]


def test_scans_that_ended_before_a_refusal_do_not_cut_its_backoff_short():
    slots = ScanSlots(2, threading.Event())
    deadline = Deadline(30)
    slots.acquire(deadline)
    slots.release(scan_ended=True)  # ended earlier: the cloud refused after it, so it freed nothing
    done = threading.Event()
    worker = threading.Thread(target=lambda: (slots.pause(0.6), done.set()))
    worker.start()
    assert not done.wait(0.3)
    worker.join(10)
    assert done.is_set()


def test_pause_stops_on_ctrl_c():
    cancel = threading.Event()
    slots = ScanSlots(1, cancel)
    cancel.set()
    with pytest.raises(InterruptedRunError, match="waiting for a scan slot"):
        slots.pause(60.0)


def test_acquire_fails_closed_at_the_deadline():
    slots = ScanSlots(1, threading.Event())
    slots.acquire(Deadline(5))
    with pytest.raises(ScanTimeoutError, match="waiting for a scan slot"):
        slots.acquire(Deadline(0.3))
