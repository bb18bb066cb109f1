"""Benchmark (not a test): the fan-out of bench/devhost_fanout.py, started through an HTTP starter on
a real `python -m devhost start` process, observed only through HTTP.

    .venv/bin/python bench/devhost_fanout_http.py [--sizes 100,1000,5000]

One host process serves all sizes (started once, like `func start`). For each N: POST
/api/fanout/{N} (the starter calls `client.start_new` and returns `create_check_status_response`),
then poll the returned `statusQueryGetUri` every 20 ms until `Completed`. Wall time runs from the
POST to the first poll that sees `Completed` (so it includes up to one poll interval). Peak RSS is
the host process's, sampled with psutil every 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 600.0

BENCH_APP = """\
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="fanout/{count:int}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_fan_out(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("FanOut", None, int(req.route_params["count"]))
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context", orchestration="FanOut")
def fan_out(context):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("Noop", i) for i in range(count)])
    return len(results)


@app.activity_trigger(input_name="value")
def Noop(value: int) -> int:
    return value
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(method: str, url: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=60) as answer:
        return answer.status, json.loads(answer.read() or b"null")


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


def start_host(app_dir: Path, state_dir: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(app_dir), "--port", str(port),
         "--state-dir", str(state_dir)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("devhost ready on"):
            return process
    raise SystemExit(f"devhost exited with {process.wait()} before its ready line")


def run_one(base_url: str, count: int, host_pid: int) -> dict[str, float]:
    sampler = PeakRss(host_pid)
    before = sampler.peak
    started = time.perf_counter()
    status, links = request("POST", f"{base_url}/api/fanout/{count}")
    assert status == 202, status
    deadline = started + TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        _, payload = request("GET", links["statusQueryGetUri"])
        if payload["runtimeStatus"] == "Completed":
            break
        if payload["runtimeStatus"] in ("Failed", "Terminated"):
            raise SystemExit(f"fan-out of {count} ended {payload['runtimeStatus']}: {payload['output']}")
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    peak = sampler.close()
    assert payload["output"] == count, payload
    return {"n": count, "seconds": elapsed, "per_second": count / elapsed,
            "peak_mib": peak / 2**20, "growth_mib": (peak - before) / 2**20}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="devhost-http-bench-") as work:
        app_dir = Path(work) / "app"
        app_dir.mkdir()
        (app_dir / "function_app.py").write_text(BENCH_APP, encoding="utf-8")
        (app_dir / "host.json").write_text(json.dumps({"version": "2.0"}), encoding="utf-8")
        port = free_port()
        host = start_host(app_dir, Path(work) / "state", port)
        try:
            print(f"devhost fan-out through HTTP: Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
            print(f"{'N':>6} | {'wall (s)':>8} | {'activities/s':>12} | {'host peak RSS (MiB)':>19} | "
                  f"{'growth (MiB)':>12}")
            for count in sizes:
                row = run_one(f"http://127.0.0.1:{port}", count, host.pid)
                print(f"{row['n']:>6} | {row['seconds']:>8.2f} | {row['per_second']:>12,.0f} | "
                      f"{row['peak_mib']:>19.1f} | {row['growth_mib']:>12.1f}")
        finally:
            host.terminate()
            host.wait(timeout=30)


if __name__ == "__main__":
    main()
