"""`andon serve --workers N`: N HTTP processes, and the scheduler once, in the parent.

Run as an operator would (a real subprocess on a free port, SQLite in a temp dir, the demo
source on): the parent process has exactly N worker children, both answer requests, and
the demo source is scheduled once in all the processes' logs together — each scheduler
logs ``scheduled source demo`` when it picks the source up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.learning.service import Classifier


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_serve_with_two_workers_runs_two_http_processes_and_one_scheduler(
    tmp_path: Path, model_dir: Path, classifier: Classifier
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    env.update(
        {
            "ANDON_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "ANDON_MODEL_DIR": str(model_dir),
            "ANDON_DEMO": "true",
            "ANDON_SCHEDULER_REFRESH_SECONDS": "0.5",
            "ANDON_PUBLIC_READ": "true",
        }
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        workers = [pid for pid in children(server.pid) if "multiprocessing" in command_line(pid)]
        spawned = [pid for pid in workers if "spawn_main" in command_line(pid)]
        assert len(spawned) == 2, [command_line(pid) for pid in children(server.pid)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(20):
                assert client.get("/signal").status_code == 200
        time.sleep(2.0)  # several scheduler refreshes: a second scheduler would log too
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    output = log_path.read_text()
    assert output.count("scheduled source demo") == 1, output[-3000:]
    assert "serving with 2 HTTP processes, the scheduler in this process" in output
    assert server.returncode == 0, output[-3000:]
