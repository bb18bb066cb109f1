"""Benchmark (not a test): one orchestration fanning out N no-op activities on the in-process Engine.

    .venv/bin/python bench/devhost_fanout.py [--sizes 100,1000,5000] [--profile N]

Each N runs in a fresh subprocess with its own temporary state folder, so the memory figures are
independent. The child loads a real function app folder (written to a temp dir) with
`devhost.app.load_app`, starts `devhost.engine.Engine` with host.json defaults, and times
`start_new` → Completed. Peak RSS is sampled with psutil every 5 ms (and cross-checked with
`ru_maxrss`); "RSS growth" is peak minus the RSS measured just before `start_new`.
`--profile N` runs one size in this process under cProfile (start_new → Completed only) and prints
the top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (100, 1_000, 5_000)
TIMEOUT_SECONDS = 600.0

BENCH_APP = """\
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context", orchestration="FanOut")
def fan_out(context):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("Noop", i) for i in range(count)])
    return len(results)


@app.activity_trigger(input_name="value")
def Noop(value: int) -> int:
    return value
"""


@dataclass(frozen=True)
class RunResult:
    activities: int
    seconds: float
    rss_before_mib: float
    rss_peak_mib: float
    history_events: int
    max_concurrent_activities: int

    @property
    def per_second(self) -> float:
        return self.activities / self.seconds

    @property
    def growth_mib(self) -> float:
        return self.rss_peak_mib - self.rss_before_mib


class PeakRss:
    """Samples this process's RSS on a thread; `peak` also takes ru_maxrss into account."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._process.memory_info().rss)

    @property
    def peak(self) -> int:
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return max(self._peak, max_rss)


def write_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(BENCH_APP, encoding="utf-8")
    (folder / "host.json").write_text(json.dumps({"version": "2.0"}), encoding="utf-8")
    return folder


async def run_fan_out(count: int, work_dir: Path, profiler: cProfile.Profile | None = None) -> RunResult:
    sys.path.insert(0, str(REPO_ROOT))
    from devhost.app import load_app
    from devhost.engine import Engine
    from devhost.registry import FunctionRegistry

    loaded = load_app(write_app(work_dir / "app"))
    durable = loaded.host_config.durable_task
    engine = Engine(
        FunctionRegistry.from_functions(loaded.functions),
        work_dir / "state",
        max_concurrent_activities=durable.max_concurrent_activity_functions,
        max_concurrent_orchestrators=durable.max_concurrent_orchestrator_functions,
    )
    await engine.start()
    try:
        rss_before = psutil.Process().memory_info().rss
        with PeakRss() as sampler:
            if profiler is not None:
                profiler.enable()
            started = time.perf_counter()
            instance_id = await engine.start_new("FanOut", input_text=json.dumps(json.dumps(count)))
            status = await engine.wait_for_status(
                instance_id, ["Completed", "Failed", "Terminated"], TIMEOUT_SECONDS
            )
            elapsed = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
        if status.runtime_status != "Completed" or status.output_text != str(count):
            raise RuntimeError(f"fan-out of {count} ended {status.runtime_status}: {status.output_text}")
        history = engine.get_history(instance_id)
    finally:
        await engine.stop()
    return RunResult(
        activities=count,
        seconds=elapsed,
        rss_before_mib=rss_before / 2**20,
        rss_peak_mib=sampler.peak / 2**20,
        history_events=len(history),
        max_concurrent_activities=durable.max_concurrent_activity_functions,
    )


def child(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="devhost-bench-") as work:
        result = asyncio.run(run_fan_out(count, Path(work)))
    print(json.dumps(asdict(result)))


def run_in_subprocess(count: int) -> RunResult:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(count)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS + 60,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"fan-out of {count} failed (exit {done.returncode}):\n{done.stderr}")
    return RunResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def profile(count: int) -> None:
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="devhost-bench-") as work:
        result = asyncio.run(run_fan_out(count, Path(work), profiler))
    print(f"N={count}: {result.seconds:.2f} s, {result.per_second:,.0f} activities/s (under cProfile)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=",".join(str(n) for n in DEFAULT_SIZES), help="comma-separated N values"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=int, metavar="N", help="profile one fan-out of N in this process")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    if args.profile is not None:
        profile(args.profile)
        return
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    print(f"devhost fan-out: Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), one subprocess per N")
    print(
        f"{'N':>6} | {'wall (s)':>8} | {'activities/s':>12} | {'peak RSS (MiB)':>14} | "
        f"{'RSS growth (MiB)':>16} | {'history events':>14}"
    )
    for count in sizes:
        r = run_in_subprocess(count)
        print(
            f"{r.activities:>6} | {r.seconds:>8.2f} | {r.per_second:>12,.0f} | {r.rss_peak_mib:>14.1f} | "
            f"{r.growth_mib:>16.1f} | {r.history_events:>14}"
        )
    print(f"max concurrent activities: {r.max_concurrent_activities} (host.json default, 10 per CPU)")


if __name__ == "__main__":
    main()
