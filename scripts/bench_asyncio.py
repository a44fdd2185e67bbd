#!/usr/bin/env python3
"""The benchmark operations of runner-tests/benches/runner_vs_raw.rs on CPython's asyncio.Runner.

Prints one JSON object: {"op": mean nanoseconds per operation, ...}. Each operation runs
for at least --seconds (default 1.0) after a short warm-up; the mean over that window is reported,
which is what criterion's point estimate is for the Rust side.
"""
import argparse
import asyncio
import json
import time

TASKS = 10_000


async def ready():
    return 1


async def yield10():
    for _ in range(10):
        await asyncio.sleep(0)
    return 7


async def spawn_join():
    tasks = [asyncio.create_task(asyncio.sleep(0, result=i)) for i in range(TASKS)]
    n = 0
    for t in tasks:
        n += await t
    return n


async def parked(fut):
    await fut  # parked forever, as a task waiting on I/O


async def spawn_parked():
    loop = asyncio.get_running_loop()
    for _ in range(TASKS):
        asyncio.create_task(parked(loop.create_future()))
    await asyncio.sleep(0)


def measure(fn, seconds):
    for _ in range(3):
        fn()
    n = 0
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    now = start
    while now < deadline or n < 5:
        fn()
        n += 1
        now = time.perf_counter_ns()
    return (now - start) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    s = args.seconds
    out = {}
    with asyncio.Runner() as r:
        out["run_ready"] = measure(lambda: r.run(ready()), s)
        out["run_yield10"] = measure(lambda: r.run(yield10()), s)
        out["spawn_join_10k"] = measure(lambda: r.run(spawn_join()), s)

    def create_close():
        with asyncio.Runner() as r:
            r.run(ready())

    out["create_close"] = measure(create_close, s)

    def cancel_at_close():
        with asyncio.Runner() as r:
            r.run(spawn_parked())

    out["cancel_10k_at_close"] = measure(cancel_at_close, s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
