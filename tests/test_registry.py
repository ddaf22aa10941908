"""Participants and the instructor on a shared server: who may act on which run, the cap on
queued runs, names as labels, the registry's old start; and one run with the real runner."""

from __future__ import annotations

import threading
import time

import pytest

from engine.train.registry import Actor, Limits, RunRegistry
from engine.train.store import RunStore
from tests.fixtures.fake_runners import WAIT, cfg, make_registry, wait_until
from tests.fixtures.tiny_runs import TINY as TINY_RUN


def test_per_participant_cap_on_queued_runs(tmp_path):
    reg, factory = make_registry(tmp_path, max_queued=2)
    reg.submit(cfg(), Actor("ann"))  # starts
    reg.submit(cfg(), Actor("ann"))
    reg.submit(cfg(), Actor("ann"))
    before = {r.id for r in reg.runs()}
    with pytest.raises(PermissionError, match="ann has 2 run.s. waiting.*at most 2"):
        reg.submit(cfg(), Actor("ann"))
    assert {r.id for r in reg.runs()} == before  # nothing written for the refused run
    reg.submit(cfg(), Actor("bob"))  # others are not held back
    reg.submit(cfg(), Actor("teacher", instructor=True))
    reg.submit(cfg(), Actor("teacher", instructor=True))
    reg.submit(cfg(), Actor("teacher", instructor=True))  # the instructor has no cap
    assert len(reg.queue()) == 6
    reg.stop_all()


def test_a_participant_may_not_act_on_another_ones_run(tmp_path):
    reg, factory = make_registry(tmp_path)
    running = reg.submit(cfg(), Actor("ann"))
    queued = reg.submit(cfg(), Actor("ann"))
    bob = Actor("  bob ")
    for act in (reg.stop, reg.delete, reg.pause, reg.unpause):
        for run_id in (running, queued):
            with pytest.raises(PermissionError, match="ann's run: only its owner or the instr"):
                act(run_id, bob)
    assert not reg.may_act(bob, running) and reg.may_act(Actor("ann"), running)
    assert reg.status(running) == "running" and reg.status(queued) == "queued"
    assert reg.run(running).path.exists() and reg.run(queued).path.exists()
    assert not factory.made[0].paused
    reg.stop_all()


def test_the_instructor_may_act_on_every_run(tmp_path):
    reg, factory = make_registry(tmp_path, instructor_token="s3cret")
    assert reg.is_instructor("s3cret") and not reg.is_instructor("s3cre")
    assert not reg.is_instructor("") and not reg.is_instructor(None)
    teacher = Actor("teacher", instructor=True)
    running = reg.submit(cfg(), Actor("ann"))
    queued = reg.submit(cfg(), Actor("bob"))
    assert reg.may_act(teacher, running) and reg.may_act(teacher, queued)
    reg.pause(running, teacher)
    assert reg.status(running) == "paused"
    reg.unpause(running, teacher)
    reg.delete(queued, teacher)
    assert queued not in {r.id for r in reg.runs()}
    assert reg.stop(running, teacher)
    assert reg.status(running) == "stopped"
    reg.stop_all()


def test_no_token_configured_means_no_instructor(tmp_path):
    reg, _ = make_registry(tmp_path, instructor_token="")
    assert not reg.is_instructor("") and not reg.is_instructor("anything")


def test_names_are_labels_normalised(tmp_path):
    assert Actor("  Ann \t  Lee\n").name == "Ann Lee"
    assert Actor("x" * 80).name == "x" * 40
    assert Actor("a\x00b/../c").name == "a b/../c"
    reg, _ = make_registry(tmp_path)
    run_id = reg.submit(cfg(), Actor("../../etc"))
    assert reg.run(run_id).path.parent == RunStore(tmp_path).root  # never part of a path
    assert reg.owner(run_id) == "../../etc"
    reg.stop_all()


def test_limits_from_the_environment():
    assert Limits.from_env({}) == Limits(1, 2, 2, "")
    env = {"SSL_STUDIO_MAX_RUNS_CPU": "3", "SSL_STUDIO_MAX_RUNS_PER_GPU": "4",
           "SSL_STUDIO_MAX_QUEUED": "5", "SSL_STUDIO_INSTRUCTOR_TOKEN": " tok "}
    assert Limits.from_env(env) == Limits(3, 4, 5, "tok")
    with pytest.raises(ValueError, match="SSL_STUDIO_MAX_RUNS_CPU"):
        Limits.from_env({"SSL_STUDIO_MAX_RUNS_CPU": "0"})
    assert "tok" not in repr(Limits.from_env(env))


def test_a_refused_submit_creates_no_run_folder(tmp_path):
    reg, factory = make_registry(tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        reg.submit(cfg(**{"train.batch_size": 1}), Actor("ann"))
    assert list(RunStore(tmp_path).root.iterdir()) == [] and factory.made == []


def test_the_old_start_returns_a_handle_that_waits_through_the_queue(tmp_path):
    reg, factory = make_registry(tmp_path)
    first = reg.start(cfg())
    second = reg.start(cfg())
    assert second.alive and reg.status(second.id) == "queued"
    assert reg.owner(second.id) == ""
    factory.made[0].finish()
    first.join(WAIT)
    wait_until(lambda: len(factory.made) == 2)
    factory.made[1].finish()
    second.join(WAIT)
    assert not second.alive and reg.status(second.id) == "finished"


def test_resume_puts_a_stopped_run_with_a_checkpoint_back_in_the_queue(tmp_path):
    reg, factory = make_registry(tmp_path)
    run_id = reg.submit(cfg(), Actor("ann"))
    reg.run(run_id).save_checkpoint({"step": 3})
    assert reg.stop(run_id, Actor("ann"))
    with pytest.raises(PermissionError, match="only its owner or the instructor may resume"):
        reg.resume(run_id, Actor("bob"))
    blocker = reg.submit(cfg(), Actor("cy"))  # takes the one slot
    assert reg.resume(run_id, Actor("ann")) == run_id
    assert reg.status(run_id) == "queued" and reg.queue_position(run_id) == 1
    with pytest.raises(ValueError, match="is queued and cannot be resumed"):
        reg.resume(run_id, Actor("ann"))
    factory.made[1].finish()
    wait_until(lambda: reg.status(blocker) == "finished" and reg.status(run_id) == "running")
    assert factory.made[2].run.id == run_id and factory.made[2].resume_flag
    assert reg.owner(run_id) == "ann"
    factory.made[2].finish()
    wait_until(lambda: reg.status(run_id) == "finished")
    with pytest.raises(ValueError, match="cannot be resumed"):
        reg.resume(run_id, Actor("ann"))


def test_stop_while_the_run_is_being_started_still_stops_it(tmp_path):
    reg, factory = make_registry(tmp_path)
    gate, entered = threading.Event(), threading.Event()

    def slow(*args):
        entered.set()
        gate.wait(WAIT)
        return factory(*args)

    reg.scheduler._factory = slow
    submitted: list[str] = []
    t = threading.Thread(target=lambda: submitted.append(reg.submit(cfg(), Actor("ann"))))
    t.start()
    entered.wait(WAIT)
    run_id = reg.queue()[0] if reg.queue() else next(j.id for j in reg.scheduler.jobs())
    assert reg.status(run_id) == "loading"
    stopper = threading.Thread(target=reg.stop, args=(run_id, Actor("ann")))
    stopper.start()
    time.sleep(0.05)
    gate.set()
    t.join(WAIT)
    stopper.join(WAIT)
    assert reg.status(run_id) == "stopped" and reg.active() == []


TINY = {**TINY_RUN, "train.epochs": 1, "train.max_seconds": 60}


def test_real_runs_take_the_one_cpu_slot_in_turn(tmp_path):
    before = set(threading.enumerate())
    reg = RunRegistry(RunStore(tmp_path), Limits(), gpus=[])
    first = reg.submit(cfg(**TINY), Actor("ann"))
    second = reg.submit(cfg(**TINY), Actor("bob"))
    assert reg.status(second) == "queued" and reg.queue_position(second) == 1
    assert reg.estimated_start(second) is not None
    wait_until(lambda: reg.status(second) in ("finished", "failed"), 180)
    a, b = reg.run(first).summary(), reg.run(second).summary()
    assert a["status"] == "finished" and b["status"] == "finished", (a, b)
    assert a["owner"] == "ann" and b["owner"] == "bob"
    assert a["ended"] <= reg.run(second).metrics()[0]["time"]  # one after the other
    assert reg.active() == [] and reg.live(first) is None
    wait_until(lambda: set(threading.enumerate()) <= before)


def test_a_real_run_stopped_then_resumed_finishes_in_its_own_directory(tmp_path):
    reg = RunRegistry(RunStore(tmp_path), Limits(), gpus=[])
    ann = Actor("ann")
    run_id = reg.submit(cfg(**{**TINY, "train.epochs": 12}), ann)
    run = reg.run(run_id)
    wait_until(lambda: len(run.metrics("step")) >= 2, 120)
    assert reg.stop(run_id, ann, timeout=60)
    assert reg.status(run_id) == "stopped" and run.summary()["resumable"]
    assert reg.resume(run_id, ann) == run_id
    wait_until(lambda: reg.status(run_id) not in ("queued", "loading", "running"), 180)
    summary = run.summary()
    assert summary["status"] == "finished", summary
    assert summary["owner"] == "ann" and reg.live(run_id) is None
