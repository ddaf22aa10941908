"""The app as a real server on 127.0.0.1 for browser tests and the load benchmark: start it on
a free port with its own runs folder and environment, stop it (gracefully, or kill -9 as a
crash would), start it again on the same folder."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
START_S = 60


def process_tree(root: int) -> dict[int, str]:
    """``root`` and every process under it, with their names (``/proc/PID/stat``)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # it ended meanwhile
        pid = int(stat.parent.name)
        parents[pid], names[pid] = int(rest.split()[1]), head.split("(", 1)[1]
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return {pid: names.get(pid, "") for pid in tree}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``streamlit run streamlit_app.py`` on 127.0.0.1 with ``SSL_STUDIO_RUNS=runs_dir``."""

    def __init__(self, runs_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self.log_path = Path(log_path)
        self.env = {**os.environ, "SSL_STUDIO_RUNS": str(self.runs_dir),
                    "SSL_STUDIO_UMAP_WARMUP": "0", **(env or {})}
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> AppServer:
        """Start the server and wait until it answers its health check."""
        self._log = open(self.log_path, "a")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
             "--server.fileWatcherType", "none", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + START_S
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return self
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the app did not start within {START_S} s:\n{self.log()}")
            time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to the server's process group and wait for it (kill -9 after
        ``timeout``); returns its exit status."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident memory of the server process, MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def tree_rss_mb(self) -> float:
        """Resident memory of the server and every process under it (the training processes
        and the server that forks them), MB."""
        total = 0.0
        for pid in process_tree(self.pid):
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) / 1024 for line in text.splitlines()
                           if line.startswith("VmRSS:")), 0.0)
        return total

    def threads(self) -> int:
        """Threads of the server process."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        return 0

    def idle_threads(self, seconds: float = 10.0) -> int:
        """The fewest threads the server had over ``seconds`` (a page's rerun has one while
        it draws)."""
        seen = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            seen.append(self.threads())
            time.sleep(0.5)
        return min(seen)


@contextlib.contextmanager
def serving(tmp_path_factory: Any, runs: Path | None = None,
            env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """A browser test module's server: on ``runs`` (default: a new folder) with ``env`` added,
    started for the ``with`` block and stopped after it."""
    server = AppServer(runs or tmp_path_factory.mktemp("runs"),
                       tmp_path_factory.mktemp("server") / "streamlit.log", env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
