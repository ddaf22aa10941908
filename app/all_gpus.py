"""Train on all GPUs: the Train page's button on a machine with several GPUs, and the Stop of the
torchrun jobs it started. The job is followed through its run directory like any run; the
launching and stopping are the engine's (:mod:`engine.train.launch`)."""

from __future__ import annotations

import threading

import streamlit as st

from app.participants import Actor
from app.state import registry, run_dir, select_run
from engine.config import RunConfig
from engine.train.distributed_run import request_stop
from engine.train.launch import Launch, gpu_count, launch
from engine.train.store import LIVE


@st.cache_resource(show_spinner=False)
def jobs() -> dict[str, Launch]:
    """The torchrun jobs this server started, by run id (shared by every browser session)."""
    return {}


@st.cache_resource(show_spinner=False)
def gpus() -> int:
    return gpu_count()


def button(cfg: RunConfig, actor: Actor) -> None:
    """"Train on all N GPUs" (only with 2 or more GPUs): the run of the sidebar as a torchrun
    job, one process per GPU, the batch size its global batch."""
    n = gpus()
    if n < 2:
        return
    if st.button(f"Train on all {n} GPUs", icon=":material/memory:", width="stretch",
                 key="train_all_gpus", help="One process per GPU (torchrun, DistributedData"
                 "Parallel); the batch size is the global batch. It does not wait in the "
                 "server's queue."):
        job = launch(cfg, registry().store, n, owner=actor.name)
        jobs()[job.run.id] = job
        select_run(job.run.id)
        st.rerun()


def controls(run_id: str, actor: Actor) -> bool:
    """Stop for a run trained by several processes: a torchrun job of this server (stopped in
    the background: its processes stop before their next step, then torchrun exits), or one
    started elsewhere that is live (its owner or the instructor may ask it to stop). False when
    ``run_id`` is neither."""
    job = jobs().get(run_id)
    if job is not None:
        job.settle()
        if job.alive:
            st.button("Stop (all GPUs)", icon=":material/stop:", key="stop_all_gpus",
                      on_click=lambda: threading.Thread(target=job.stop, daemon=True).start())
        return True
    run = run_dir(run_id)
    summary = run.summary() if run is not None else {}
    if summary.get("processes", 1) < 2 or run.status() not in LIVE:
        return False
    if actor.instructor or summary.get("owner") == actor.name:
        st.button("Stop (all processes)", icon=":material/stop:", key="stop_all_gpus",
                  on_click=request_stop, args=(run,))
    return True
