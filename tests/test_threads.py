"""One thread or every core: a CPU run times its own steps on each and keeps the faster
(``engine.device.StepThreads``; the measurements behind it: BENCHMARKS.md, "One thread or
every core"), and how OpenMP's threads wait (``engine.openmp``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import device, openmp
from engine.config import RunConfig
from engine.device import StepThreads
from engine.eval.map_quality import map_neighbours
from engine.eval.retrieval import NeighbourIndex
from engine.train.loop import Trainer
from tests.fixtures.tiny_runs import TINIER


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    """Two cores, no thread count chosen by the user; the process's count restored after."""
    for name in device.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(device, "cpu_cores", lambda: 2)
    before = torch.get_num_threads()
    yield
    device.set_cpu_threads(before)


def feed(threads: StepThreads, ms: dict[int, float], steps: int) -> list[int]:
    """Run ``steps`` fake steps that take ``ms[count]`` milliseconds on the count in force;
    returns the count each step ran on."""
    counts = []
    for _ in range(steps):
        counts.append(torch.get_num_threads())
        threads.observe(ms[torch.get_num_threads()] / 1000)
    return counts


def test_small_steps_go_to_one_thread_and_stay():
    device.set_cpu_threads(2)
    threads = StepThreads(True)
    counts = feed(threads, {1: 18, 2: 58}, 1 + StepThreads.TRIAL_STEPS + 20)
    assert counts[1:1 + StepThreads.TRIAL_STEPS] == [1, 2, 1, 2, 1, 2]  # the trial alternates
    assert threads.choices == [1]
    assert set(counts[1 + StepThreads.TRIAL_STEPS:]) == {1}
    assert torch.get_num_threads() == 1 and threads.threads == 1


def test_steps_that_gain_from_every_core_keep_them():
    device.set_cpu_threads(2)
    threads = StepThreads(True)
    feed(threads, {1: 326, 2: 217}, 1 + StepThreads.TRIAL_STEPS + 5)
    assert threads.choices == [2] and torch.get_num_threads() == 2


def test_a_big_first_step_keeps_every_core_without_a_trial():
    device.set_cpu_threads(2)
    threads = StepThreads(True)
    counts = feed(threads, {1: 1000, 2: 600}, 10)
    assert set(counts) == {2} and not threads.active and threads.choices == []


def test_the_choice_is_tried_again_when_the_load_changes():
    """After RETRY_SECONDS of training on one thread, a new trial: every core is now faster
    (say another process ended), and the run follows."""
    device.set_cpu_threads(2)
    threads = StepThreads(True)
    feed(threads, {1: 20, 2: 60}, 1 + StepThreads.TRIAL_STEPS)
    assert threads.choices == [1]
    steps_to_retry = int(StepThreads.RETRY_SECONDS / 0.020) + 1
    feed(threads, {1: 20, 2: 60}, steps_to_retry)
    assert threads.choices == [1]
    feed(threads, {1: 40, 2: 25}, StepThreads.TRIAL_STEPS)
    assert threads.choices == [1, 2] and torch.get_num_threads() == 2


def test_a_count_the_user_chose_is_left_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    device.set_cpu_threads(2)
    threads = StepThreads(True)
    assert set(feed(threads, {1: 18, 2: 58}, 12)) == {2} and threads.choices == []
    monkeypatch.delenv("OMP_NUM_THREADS")
    torch.set_num_threads(1)  # the user's own call, after the engine was imported
    assert not StepThreads(True).active


def test_a_cpu_run_reports_its_count_and_the_next_run_starts_on_every_core():
    cfg = RunConfig().with_overrides({**TINIER, "train.device": "cpu", "train.max_seconds": 0,
                                      "train.epochs": 2,
                                      "eval.every_seconds": 1000,
                                      "eval.diagnostics_every_steps": 0})
    trainer = Trainer(cfg)
    finished = list(trainer.events())[-1]
    assert finished["type"] == "finished" and finished["steps"] > StepThreads.TRIAL_STEPS
    assert finished["threads"] == torch.get_num_threads() in (1, 2)
    device.set_cpu_threads(1)  # as a run that chose one thread leaves it
    Trainer(cfg)
    assert torch.get_num_threads() == 2  # the engine's own choice is not taken for the user's


def test_a_search_leaves_torch_s_thread_count_as_it_was():
    """faiss and torch share one OpenMP runtime: a search sets the calling thread's count for
    faiss and must put torch's back (a run's evaluation searches between its steps)."""
    rng = np.random.default_rng(0)
    device.set_cpu_threads(1)
    index = NeighbourIndex(rng.random((100, 8)))
    index.search(rng.random((30, 8)), 5)  # 30 queries: faiss on every core
    index.neighbours_of([0], 3)
    map_neighbours(rng.random((50, 2)), 3)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("given, expected", [
    ({}, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE"}),
    ({"OMP_WAIT_POLICY": ""}, {"OMP_WAIT_POLICY": ""}),  # libgomp's own default
    ({"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}),
])
def test_waiting_threads_sleep_unless_the_user_chose(given, expected):
    environ = dict(given)
    openmp.set_wait_policy(environ)
    assert environ == expected


def test_importing_the_engine_sets_the_wait_policy_before_torch_loads():
    """What a fresh process (the CLI, the app's run process) gets from ``import engine``."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import os, sys, engine; assert 'torch' not in sys.modules; "
            "print(os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["PASSIVE"]


def test_the_probe_keeps_numpy_s_blas_threads_asleep(monkeypatch):
    """OpenBLAS's threads spin after a call and slow the next training step: the probe's
    statistics run on the calling thread alone, and the count is restored after."""
    from threadpoolctl import threadpool_info

    import engine.train.evaluator as evaluator

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen = []
    real = evaluator.diagnostics
    monkeypatch.setattr(evaluator, "diagnostics",
                        lambda *a: seen.append(blas_threads()) or real(*a))
    before = blas_threads()
    trainer = Trainer(RunConfig().with_overrides({**TINIER, "train.device": "cpu"}))
    event = trainer.probe(0)
    assert event["type"] == "diagnostics" and event["rank_z"] > 0
    assert seen == [{1}]
    assert blas_threads() == before
