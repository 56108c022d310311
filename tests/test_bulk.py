"""The collector pause of bulk work: counted across threads, and never switching on what was off."""

from __future__ import annotations

import gc
import threading

from crgate.bulk import without_cycle_collection


def test_the_collector_comes_back_only_after_the_last_overlapping_pause():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with without_cycle_collection():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert inside.wait(10)
        with without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the worker's pause is still on
    finally:
        release.set()
        thread.join(10)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_when_the_block_raises():
    try:
        with without_cycle_collection():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
