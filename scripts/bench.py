#!/usr/bin/env python3
"""Runs the criterion benches (facade vs raw backend) and CPython's asyncio.Runner side by side,
three times, and writes docs/PERFORMANCE.md and target/bench-summary.json.

    python3 scripts/bench.py            # three repetitions (about 15 minutes on 2 cores)
    python3 scripts/bench.py --reps 1   # a quick look
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
OPS = ["run_ready", "run_yield10", "spawn_join_10k", "create_close", "cancel_10k_at_close",
       "contextvar_get", "contextvar_set", "task_yield100"]
BACKENDS = ["tokio_current", "tokio_multi", "smol_local", "glommio"]
TARGETS = {"run_ready": 1.10, "run_yield10": 1.10, "spawn_join_10k": 1.25,
           "create_close": 1.20, "cancel_10k_at_close": 1.50}
PY_OPS = ["run_ready", "run_yield10", "spawn_join_10k", "create_close", "cancel_10k_at_close"]


def estimate(group, fn):
    # criterion writes a function id "raw/tokio_current" under the directory "raw_tokio_current"
    path = CRITERION / group / fn.replace("/", "_") / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["mean"]["point_estimate"]


def run_rust():
    subprocess.run(["cargo", "bench", "-p", "runner-tests", "--all-features", "--bench", "runner_vs_raw"],
                   cwd=ROOT, check=True, stdout=sys.stderr)
    rows = {}
    for op in OPS:
        for dirpath in (CRITERION / op).glob("*"):
            fn = dirpath.name
            if fn == "report":
                continue
            kind, _, backend = fn.partition("_")
            # The context-variable rows compare a `ContextVar` with a plain thread-local: one row.
            if op.startswith("contextvar"):
                backend = "any"
            rows.setdefault(op, {}).setdefault(backend, {})[kind] = estimate(op, fn)
    return rows


def run_python():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_asyncio.py")],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}, "
            f"{rustc}, CPython {platform.python_version()}")


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    reps = []
    for i in range(args.reps):
        print(f"repetition {i + 1}/{args.reps}", file=sys.stderr)
        reps.append((run_rust(), run_python()))

    summary, lines = [], []
    lines.append("# Performance: the facade against the raw backends, and against CPython\n")
    lines.append(f"Machine: {machine()}.\n")
    lines.append(f"Made by `python3 scripts/bench.py` ({args.reps} repetitions of "
                 "`cargo bench -p runner-tests --all-features --bench runner_vs_raw` and "
                 "`scripts/bench_asyncio.py`). Times are criterion's mean per operation, the "
                 "median over the repetitions; *ratio* is runner / raw measured in the same "
                 "process and repetition, given as median [min–max] over the repetitions. "
                 "This machine is shared and noisy: read single-digit-percent differences "
                 "with suspicion.\n")
    lines.append("| operation | backend | raw | runner | ratio [spread] | target | CPython | "
                 "CPython / runner |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for op in OPS:
        backends = sorted({b for rust, _ in reps for b in rust.get(op, {})},
                          key=lambda b: BACKENDS.index(b) if b in BACKENDS else 99)
        for backend in backends:
            raws = [r[op][backend].get("raw") for r, _ in reps if op in r and backend in r[op]]
            runs = [r[op][backend].get("runner") for r, _ in reps if op in r and backend in r[op]]
            raws = [x for x in raws if x is not None]
            runs = [x for x in runs if x is not None]
            ratios = [r[op][backend]["runner"] / r[op][backend]["raw"]
                      for r, _ in reps
                      if op in r and backend in r[op]
                      and r[op][backend].get("raw") and r[op][backend].get("runner")]
            raw = statistics.median(raws) if raws else None
            run = statistics.median(runs) if runs else None
            ratio = statistics.median(ratios) if ratios else None
            py = [p[op] for _, p in reps if op in p]
            py_ns = statistics.median(py) if py else None
            target = TARGETS.get(op)
            met = "" if target is None or ratio is None else (" ✓" if ratio <= target else " ✗")
            spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "–"
            lines.append(
                f"| {op} | {backend} | {fmt(raw)} | {fmt(run)} | "
                f"{ratio:.2f} [{spread}] | {('≤ %.2f' % target + met) if target else '–'} | "
                f"{fmt(py_ns)} | {f'{py_ns / run:.0f}×' if (py_ns and run) else '–'} |"
                if ratio is not None else
                f"| {op} | {backend} | {fmt(raw)} | {fmt(run)} | – | – | {fmt(py_ns)} | – |")
            summary.append({"op": op, "backend": backend, "raw_ns": raw, "runner_ns": run,
                            "ratio": ratio, "ratio_min": min(ratios) if ratios else None,
                            "ratio_max": max(ratios) if ratios else None, "cpython_ns": py_ns})
    lines.append("\nThe glommio raw rows reuse one executor (a fresh glommio executor leaks an "
                 "eventfd each time, glommio#448), and its `cancel_10k_at_close` raw row cancels "
                 "through the task handles, because glommio's executor drops none of its tasks "
                 "when it goes. `contextvar_*` compare with a plain `thread_local!` `Cell`; "
                 "`task_yield100` is the per-poll cost of the task wrapper (context, scope, "
                 "panic catching, abort check).\n")
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "PERFORMANCE.md").write_text("\n".join(lines) + "\n")
    (ROOT / "target").mkdir(exist_ok=True)
    (ROOT / "target" / "bench-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
