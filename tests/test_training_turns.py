"""Turns at training among a server's sessions (builder.devices.TrainingTurns): at most
BLOCKWORK_TRAINING_SLOTS train at once, the others wait their turn first come first served, and the Train page
takes a turn for every slice it trains."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from builder import devices
from builder.devices import TrainingTurns
from ui import state

from .test_train_page import train_page, train_until_done, use_tied_moons


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def most_at_once(turns: TrainingTurns, workers: int) -> int:
    """Run `workers` threads that each hold a turn for a moment; the most that held one at the same time."""
    lock, holding, most = threading.Lock(), [0], [0]

    def work() -> None:
        with turns.turn():
            with lock:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            time.sleep(0.02)
            with lock:
                holding[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert turns.busy == 0 and turns.waiting == 0
    return most[0]


def test_one_session_trains_at_a_time_by_default(monkeypatch) -> None:
    monkeypatch.delenv("BLOCKWORK_TRAINING_SLOTS", raising=False)
    assert most_at_once(TrainingTurns(), 6) == 1


def test_the_slots_are_set_by_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_TRAINING_SLOTS", "3")
    assert most_at_once(TrainingTurns(), 8) == 3
    monkeypatch.setenv("BLOCKWORK_TRAINING_SLOTS", "0")
    turns = TrainingTurns()
    with pytest.raises(ValueError, match="BLOCKWORK_TRAINING_SLOTS must be positive"), turns.turn():
        pass
    assert turns.busy == 0 and turns.waiting == 0  # a bad setting leaves no request behind


def test_turns_are_given_first_come_first_served(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_TRAINING_SLOTS", "1")
    turns, served = TrainingTurns(), []

    def session(name: str) -> None:
        with turns.turn():
            served.append(name)

    threads = []
    with turns.turn():  # held while a class asks, one after the other
        for i, name in enumerate(["ada", "bo", "cy", "di", "ed"]):
            threads.append(threading.Thread(target=session, args=(name,)))
            threads[-1].start()
            wait_until(lambda i=i: turns.waiting == i + 1)
        assert served == [] and turns.busy == 1
    for t in threads:
        t.join(10)
    assert served == ["ada", "bo", "cy", "di", "ed"]


def test_a_failed_slice_gives_its_turn_back(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_TRAINING_SLOTS", "1")
    turns = TrainingTurns()
    with pytest.raises(RuntimeError, match="out of memory"), turns.turn():
        raise RuntimeError("out of memory")
    assert turns.busy == 0
    with turns.turn():  # not blocked
        assert turns.busy == 1


def test_the_train_page_trains_each_slice_in_a_turn(app: AppTest, monkeypatch) -> None:
    taken: list[bool] = []  # per turn taken: whether the run trained inside it

    @contextlib.contextmanager
    def recording_slot() -> Iterator[None]:
        run = app.session_state[state.TRAIN_RUN.name]
        before = run.history.steps + (len(run._partial.losses) if run._partial else 0)
        with devices.TRAINING.turn():
            yield
        after = run.history.steps + (len(run._partial.losses) if run._partial else 0)
        taken.append(after > before)

    monkeypatch.setattr(devices, "training_slot", recording_slot)
    at = train_page(app)
    use_tied_moons(at)
    at.button(key="train_start").click().run()
    train_until_done(at)
    assert taken and all(taken), taken  # every slice trained, and trained in a turn
    assert devices.TRAINING.busy == 0
