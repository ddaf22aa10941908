"""Admission control with runners that train nothing: the limit per device, the FIFO queue,
cancelling, positions and estimates, placement on the least busy GPU, no thread left behind."""

from __future__ import annotations

import threading
import time

import pytest

from engine.train.estimate import remaining, start_after
from engine.train.registry import Actor, Limits, RunRegistry
from engine.train.scheduler import Scheduler, place
from engine.train.store import RunStore
from tests.fixtures.fake_runners import WAIT, Factory, cfg, make_registry, wait_until


def test_limit_and_fifo_order_hold_under_twenty_concurrent_submitters(tmp_path):
    reg, factory = make_registry(tmp_path, max_runs_cpu=1, max_queued=1)
    order: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(20)

    def submit(i: int) -> None:
        go.wait()
        run_id = reg.submit(cfg(), Actor(f"p{i}"))
        with lock:
            order.append(run_id)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert len(order) == 20
    queued = reg.queue()
    assert len(queued) == 19 and len(factory.started()) == 1
    assert sorted([factory.started()[0], *queued]) == sorted(order)
    for n in range(20):
        assert len(reg.active()) == 1
        running = factory.made[n]
        assert reg.status(running.id) == "running"
        running.finish()
        wait_until(lambda n=n, r=running: len(factory.made) == min(n + 2, 20) and not r.alive)
    assert factory.started() == [factory.started()[0], *queued]
    reg.stop_all()


def test_a_queued_run_starts_when_the_first_ends(tmp_path):
    reg, factory = make_registry(tmp_path)
    first = reg.submit(cfg(), Actor("ann"))
    second = reg.submit(cfg(), Actor("bob"))
    assert reg.status(first) == "running" and reg.status(second) == "queued"
    assert reg.run(second).summary()["status"] == "queued"
    assert reg.run(second).summary()["owner"] == "bob"
    assert reg.queue_position(second) == 1 and reg.queue_position(first) is None
    factory.made[0].finish()
    wait_until(lambda: reg.status(second) == "running")
    assert reg.status(first) == "finished"
    assert reg.live(first) is None  # the ended runner is not kept
    reg.stop_all()


def test_cancel_from_the_queue(tmp_path):
    reg, factory = make_registry(tmp_path)
    first = reg.submit(cfg(), Actor("ann"))
    second = reg.submit(cfg(), Actor("bob"))
    assert reg.stop(second, Actor("bob"))
    summary = reg.run(second).summary()
    assert summary["status"] == "stopped" and summary["reason"] == "cancelled while queued"
    assert reg.queue() == [] and reg.queue_position(second) is None
    factory.made[0].finish()
    wait_until(lambda: reg.status(first) == "finished")
    assert factory.started() == [first]  # the cancelled run never started
    reg.stop_all()


def test_position_and_estimate_on_a_constructed_case(tmp_path):
    # Two slots: one run with 60 s of its 100 s budget left, one that paced 1/4 of its
    # epochs in 20 s (60 s to go); queued: a 30 s run, a 50 s run, then ours.
    reg, factory = make_registry(tmp_path, max_runs_cpu=2, max_queued=5)
    now = time.time()
    a = reg.submit(cfg(**{"train.max_seconds": 100, "train.epochs": 10}), Actor("a"))
    b = reg.submit(cfg(**{"train.epochs": 8, "train.max_seconds": 0}), Actor("b"))
    factory.made[0].log.append({"type": "step", "epoch": 1, "elapsed": 40.0, "time": now})
    factory.made[1].log.append({"type": "step", "epoch": 2, "elapsed": 20.0, "time": now})
    c = reg.submit(cfg(**{"train.max_seconds": 30}), Actor("c"))
    d = reg.submit(cfg(**{"train.max_seconds": 50}), Actor("d"))
    e = reg.submit(cfg(**{"train.max_seconds": 10}), Actor("e"))
    assert [reg.queue_position(x) for x in (a, b, c, d, e)] == [None, None, 1, 2, 3]
    job = reg.scheduler.job(e)
    # slots free at 60 and 60; c takes one (60 -> 90), d the other (60 -> 110); e starts at 90
    assert reg.scheduler.estimated_start(job, now=now) == pytest.approx(now + 90)
    assert reg.scheduler.estimated_start(reg.scheduler.job(c), now=now) == pytest.approx(now + 60)
    # a queued run ahead without a time budget makes the estimate unknown
    f = reg.submit(cfg(**{"train.epochs": 5, "train.max_seconds": 0}), Actor("f"))
    g = reg.submit(cfg(**{"train.max_seconds": 10}), Actor("g"))
    assert reg.estimated_start(f) is not None and reg.estimated_start(g) is None
    reg.stop_all()


def test_remaining_takes_the_smaller_of_budget_and_pace():
    now = 1000.0
    both = cfg(**{"train.epochs": 4, "train.max_seconds": 30})
    assert remaining(both, None, now - 12, now) == pytest.approx(18)  # budget minus wall time
    step = {"epoch": 2, "elapsed": 10.0, "time": now - 1}
    assert remaining(both, step, now - 12, now) == pytest.approx(9)  # pace: 10 s, 1 s gone
    budget_only = cfg(**{"train.epochs": 0, "train.max_seconds": 30})
    assert remaining(budget_only, step, now - 12, now) == pytest.approx(19)
    assert remaining(cfg(**{"train.epochs": 3, "train.max_seconds": 0}), None, now, now) is None
    evaluation = cfg(**{"train.epochs": 0, "train.max_seconds": 0})
    assert remaining(evaluation, None, now, now) == 0.0  # evaluates the untrained backbone


def test_start_after_fills_the_first_free_slot_in_turn():
    assert start_after([60.0, 60.0], [30.0, 50.0]) == 90.0
    assert start_after([0.0, 5.0], []) == 0.0
    assert start_after([10.0], [None]) is None and start_after([None], []) is None
    assert start_after([], []) is None


def test_runs_go_to_the_least_busy_gpu(tmp_path):
    gpus = ["cuda:0", "cuda:1", "cuda:2"]
    reg, factory = make_registry(tmp_path, gpus=gpus, max_runs_per_gpu=2, max_queued=5)
    ids = [reg.submit(cfg(), Actor(f"p{i}")) for i in range(4)]
    devices = [reg.scheduler.job(i).device for i in ids]
    assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    factory.made[1].finish()  # cuda:1 frees a slot: it is now the least busy
    wait_until(lambda: reg.scheduler.job(ids[1]) is None)
    nxt = reg.submit(cfg(), Actor("q"))
    assert reg.scheduler.job(nxt).device == "cuda:1"
    cpu = reg.submit(cfg(**{"train.device": "cpu"}), Actor("r"))
    assert reg.scheduler.job(cpu).device == "cpu"
    reg.stop_all()


def test_placement_names_the_gpu_when_the_config_allows_it():
    placed = place(cfg(), "cuda:1", ["cuda:0", "cuda:1"])
    assert placed.train.device in ("cuda:1", "auto")  # "auto" while validate refuses cuda:N
    assert place(cfg(), "cuda", ["cuda"]) == cfg()  # one GPU: nothing to name
    assert place(cfg(**{"train.device": "cpu"}), "cpu", ["cuda:0", "cuda:1"]).train.device == "cpu"


def test_device_candidates_without_gpus():
    sched = Scheduler(Limits(), Factory(), gpus=[])
    assert sched.capacity == {"cpu": 1}
    assert sched.candidates(cfg()) == ["cpu"]
    two = Scheduler(Limits(), Factory(), gpus=["cuda:0", "cuda:1"])
    assert two.capacity == {"cpu": 1, "cuda:0": 2, "cuda:1": 2}


def test_no_thread_left_behind_after_stop_all(tmp_path):
    before = set(threading.enumerate())
    reg, factory = make_registry(tmp_path, max_runs_cpu=2, max_queued=5)
    ids = [reg.submit(cfg(), Actor(f"p{i}")) for i in range(5)]
    assert len(reg.active()) == 2
    reg.stop_all()
    assert set(threading.enumerate()) - before == set()
    statuses = sorted(reg.status(i) for i in ids)
    assert statuses == ["stopped"] * 5
    assert sum(reg.run(i).summary().get("reason") == "cancelled while queued" for i in ids) == 3
    assert reg.active() == [] and reg.queue() == []


def test_a_runner_that_cannot_be_made_fails_its_run_and_the_queue_goes_on(tmp_path):
    factory = Factory()
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("no memory for the model")
        return factory(*args)

    reg = RunRegistry(RunStore(tmp_path), Limits(), flaky, [])
    bad = reg.submit(cfg(), Actor("ann"))
    good = reg.submit(cfg(), Actor("ann"))
    assert reg.status(bad) in ("failed", "interrupted")
    assert reg.run(bad).summary()["error"] == "no memory for the model"
    assert reg.status(good) == "running"
    reg.stop_all()


def test_queued_runs_keep_a_fresh_heartbeat(tmp_path):
    before = set(threading.enumerate())  # other tests' registries may still beat for theirs
    reg, factory = make_registry(tmp_path)
    reg.scheduler.heartbeat_seconds = 0.02
    reg.submit(cfg(), Actor("ann"))
    run = reg.run(reg.submit(cfg(), Actor("bob")))
    run.write_summary({"heartbeat": 0.0})  # as if the last beat were long ago
    assert run.status() == "interrupted"
    wait_until(lambda: run.summary()["heartbeat"] > 0)
    assert run.status() == "queued"
    reg.stop_all()
    assert not [t for t in threading.enumerate() if t not in before
                and t.name == "queue-heartbeat"]


def test_several_gpus_share_one_pool_while_a_config_cannot_name_one(monkeypatch):
    import torch

    import engine.train.scheduler as scheduler

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    expected = ["cuda:0", "cuda:1", "cuda:2"] if scheduler.names_a_gpu() else ["cuda"]
    assert scheduler.gpu_devices() == expected
    monkeypatch.setattr(scheduler, "names_a_gpu", lambda: True)
    assert scheduler.gpu_devices() == ["cuda:0", "cuda:1", "cuda:2"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert scheduler.gpu_devices() == ["cuda"]


def test_the_limit_holds_while_runs_end_and_are_cancelled_at_random(tmp_path):
    factory = Factory(lifetime=0.01)
    reg = RunRegistry(RunStore(tmp_path), Limits(max_runs_cpu=2, max_queued=3), factory, [])
    go = threading.Barrier(20)
    ids: list[str] = []
    lock = threading.Lock()

    def participant(i: int) -> None:
        go.wait()
        for n in range(3):
            run_id = reg.submit(cfg(), Actor(f"p{i}"))
            with lock:
                ids.append(run_id)
            if (i + n) % 4 == 0:
                reg.stop(run_id, Actor(f"p{i}"))

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    wait_until(lambda: not reg.scheduler.jobs())
    assert len(ids) == 60 and 1 <= factory.peak <= 2
    assert {reg.status(i) for i in ids} <= {"finished", "stopped"}
    reg.stop_all()
