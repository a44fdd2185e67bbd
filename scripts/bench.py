#!/usr/bin/env python3
"""Measures the runner against the raw backends (and CPython's asyncio.Runner) and writes
docs/PERFORMANCE.md, all of it: nothing in that file is edited by hand except the findings,
which live between the two `findings` markers and are kept as they are.

What one run measures:
- criterion (`cargo bench --all-features --bench runner_vs_raw` and `--bench smol_multi`), and
  `scripts/bench_asyncio.py`, `--reps` times: times and runner / raw ratios, median and spread;
- callgrind instruction counts per operation (`runner-tests/benches/callgrind_ops.rs` under
  `valgrind --tool=callgrind`, current-thread flavours): deterministic, once;
- allocations and retained bytes per pending task (`runner-tests/benches/alloc.rs`, a counting allocator):
  exact, once.

Each run is stored as JSON: `--label before` writes docs/perf/before.json, and every stored
label is rendered side by side (before, after, then the others by date). A run without
`--label` is stored in target/bench-unlabelled.json and shown next to the stored ones.

    python3 scripts/bench.py --label before --reps 3   # ~30 minutes on 2 shared cores
    python3 scripts/bench.py --reps 1                   # a quick look (~12 minutes)
    python3 scripts/bench.py --render-only              # the page again, from the stored runs
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
PERF = ROOT / "docs" / "perf"
PAGE = ROOT / "docs" / "PERFORMANCE.md"
UNLABELLED = ROOT / "target" / "bench-unlabelled.json"
CRITERION_BENCHES = ["runner_vs_raw", "smol_multi"]
# Rows in this order; groups the benches add later come after, in the order found.
OPS = ["run_ready", "run_yield10", "spawn_join_10k", "create_close", "cancel_10k_at_close",
       "sleep_1k", "spawn_2threads", "contextvar_get", "contextvar_set", "task_yield100"]
BACKENDS = ["tokio_current", "tokio_multi", "smol_local", "smol_multi", "glommio", "any"]
TARGETS = {"run_ready": 1.10, "run_yield10": 1.10, "spawn_join_10k": 1.25,
           "create_close": 1.20, "cancel_10k_at_close": 1.50, "sleep_1k": 1.25,
           "spawn_2threads": 1.25}
PY_OPS = ["run_ready", "run_yield10", "spawn_join_10k", "create_close", "cancel_10k_at_close"]
# callgrind: iterations N per op (the binary also runs 2N; the difference / N is one iteration).
CG_OPS = {"run_ready": 400, "run_yield10": 400, "spawn_join_100": 40, "task_yield100": 100,
          "create_close": 40, "cancel_100_at_close": 20}
CG_BACKENDS = ["tokio_current", "smol_local", "glommio"]
FINDINGS_START = "<!-- findings: kept by scripts/bench.py; edit freely between these markers -->"
FINDINGS_END = "<!-- end of findings -->"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cargo(*args, capture=False):
    cmd = ["cargo", *args]
    log("+", " ".join(cmd))
    if capture:
        return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
    return None


# ---------------------------------------------------------------------------------- measuring

def run_criterion(since):
    """One repetition of the criterion benches: {op: {backend: {kind: ns}}}."""
    for bench in CRITERION_BENCHES:
        cargo("bench", "-p", "runner-tests", "--all-features", "--bench", bench)
    rows = {}
    for est in CRITERION.glob("*/*/new/estimates.json"):
        if est.stat().st_mtime < since:
            continue  # left over from an earlier run or a removed bench
        op, fn = est.parts[-4], est.parts[-3]
        # criterion writes the function id "raw/tokio_current" as the directory
        # "raw_tokio_current"
        kind, _, backend = fn.partition("_")
        if op.startswith("contextvar"):
            backend = "any"  # a `ContextVar` against a plain thread-local: one row
        ns = json.loads(est.read_text())["mean"]["point_estimate"]
        rows.setdefault(op, {}).setdefault(backend, {})[kind] = ns
    return rows


def run_python():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_asyncio.py")],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_alloc():
    out = cargo("bench", "-p", "runner-tests", "--all-features", "--bench", "alloc", capture=True)
    rows = []
    for line in out.splitlines():
        if line.startswith("ALLOC "):
            rows.append(json.loads(line[len("ALLOC "):]))
    return rows


def bench_binary(name):
    out = cargo("bench", "-p", "runner-tests", "--all-features", "--bench", name, "--no-run",
                "--message-format=json", capture=True)
    for line in out.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and msg["target"]["name"] == name):
            return msg["executable"]
    raise SystemExit(f"no executable for bench {name}")


def instructions(exe, args):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe,
                        *args], check=True, capture_output=True, text=True)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no instruction total for {args}")


def run_callgrind():
    """{op: {backend: {kind: instructions per iteration}}}, or None without valgrind."""
    if shutil.which("valgrind") is None:
        log("valgrind is not installed: no instruction counts")
        return None
    exe = bench_binary("callgrind_ops")
    rows = {}
    for op, n in CG_OPS.items():
        for backend in CG_BACKENDS:
            for kind in ["raw", "runner"]:
                try:
                    one = instructions(exe, [op, kind, backend, str(n)])
                    two = instructions(exe, [op, kind, backend, str(2 * n)])
                except subprocess.CalledProcessError as e:
                    log(f"callgrind {op} {kind} {backend} failed: {e.stderr[-400:]}")
                    continue
                per = (two - one) / n
                log(f"callgrind {op} {kind} {backend}: {per:.0f} instructions")
                rows.setdefault(op, {}).setdefault(backend, {})[kind] = per
    return rows


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


def commit():
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short=10", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs")
    return head + (" (with uncommitted changes)" if dirty else "")


def measure(reps):
    cargo("bench", "-p", "runner-tests", "--all-features", "--no-run")
    run = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": commit(), "machine": machine(), "reps": reps,
           "criterion": [], "cpython": []}
    for i in range(reps):
        log(f"repetition {i + 1}/{reps}")
        since = time.time()
        run["criterion"].append(run_criterion(since))
        run["cpython"].append(run_python())
    run["callgrind"] = run_callgrind()
    run["alloc"] = run_alloc()
    return run


# ---------------------------------------------------------------------------------- rendering

def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def fmt_times(x):
    return f"{x:.0f}×" if x >= 10 else f"{x:.1f}×"


def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def order(keys, known):
    return sorted(keys, key=lambda k: (known.index(k) if k in known else len(known), k))


def criterion_cell(run, op, backend, raw_kind="raw"):
    """(raw median, runner median, ratio median, ratio min, ratio max) over the repetitions;
    `raw_kind` names the raw row to compare with (`lazy`: see `LAZY_NOTE`)."""
    raws, runs, ratios = [], [], []
    for rep in run["criterion"]:
        row = rep.get(op, {}).get(backend, {})
        raw, ours = row.get(raw_kind), row.get("runner")
        raws.append(raw)
        runs.append(ours)
        if raw and ours:
            ratios.append(ours / raw)
    return (med(raws), med(runs), med(ratios),
            min(ratios) if ratios else None, max(ratios) if ratios else None)


def goal_of(op):
    if op in TARGETS:
        return f"≤ {TARGETS[op]:.2f}"
    return {"contextvar_get": "< 20 ns", "task_yield100": "< 10 ns/poll"}.get(op, "–")


def met_of(op, raw, ours, ratio):
    """Whether the row meets its goal, as a cell."""
    if op in TARGETS and ratio is not None:
        return "✓" if ratio <= TARGETS[op] else "✗"
    if op == "contextvar_get" and ours is not None:
        return "✓" if ours < 20 else "✗"
    if op == "task_yield100" and raw is not None and ours is not None:
        per_poll = (ours - raw) / 100
        return f"{'✓' if per_poll < 10 else '✗'} ({per_poll:.0f} ns/poll)"
    return "–"


def render(runs, findings):
    labels = list(runs)
    latest = runs[labels[-1]]
    out = []
    out.append("# Performance: the facade against the raw backends, and against CPython\n")
    out.append("Everything on this page but the findings is written by `python3 scripts/bench.py`; "
               "do not edit it by hand. Each stored run is a labelled JSON file in `docs/perf/` "
               "(`--label before`, `--label after`), and every stored run is shown side by side, "
               "in these columns:\n")
    for label in labels:
        r = runs[label]
        out.append(f"- **{label}**: {r['date']}, commit {r['commit']}, {r['reps']} "
                   f"repetition{'s' if r['reps'] != 1 else ''}; {r['machine']}.")
    out.append("")
    out.append("Times are criterion's mean per operation, the median over the repetitions; "
               "*ratio* is runner / raw measured in the same process and repetition, as the "
               "median [min–max] over the repetitions. The machine is shared and noisy: read "
               "single-digit-percent differences in times with suspicion, and prefer the "
               "instruction counts, which are deterministic.\n")

    # Criterion.
    out.append("## Time per operation (criterion)\n")
    head = "| operation | backend | target |"
    rule = "|---|---|---|"
    for label in labels:
        head += f" {label}: raw | {label}: runner | {label}: ratio [spread] | {label}: met |"
        rule += "---|---|---|---|"
    head += " CPython | CPython / runner |"
    rule += "---|---|"
    out += [head, rule]
    ops = order({op for r in runs.values() for rep in r["criterion"] for op in rep}, OPS)
    for op in ops:
        backends = order({b for r in runs.values() for rep in r["criterion"]
                          for b in rep.get(op, {})}, BACKENDS)
        for backend in backends:
            name = backend if backend != "any" else "any (raw: a `thread_local!` `Cell`)"
            line = f"| {op} | {name} | {goal_of(op)} |"
            for label in labels:
                raw, ours, ratio, lo, hi = criterion_cell(runs[label], op, backend)
                met = met_of(op, raw, ours, ratio)
                spread = "–" if ratio is None else f"{ratio:.2f} [{lo:.2f}–{hi:.2f}]"
                line += f" {fmt_ns(raw)} | {fmt_ns(ours)} | {spread} | {met} |"
            py = med([p.get(op) for p in latest["cpython"]]) if op in PY_OPS else None
            ours = criterion_cell(latest, op, backend)[1]
            line += f" {fmt_ns(py)} | {fmt_times(py / ours) if (py and ours) else '–'} |"
            out.append(line)
            if any(rep.get(op, {}).get(backend, {}).get("lazy") for r in runs.values()
                   for rep in r["criterion"]):
                line = f"| {op} | {backend}, raw spawn queued (see below) | for information |"
                for label in labels:
                    raw, ours, ratio, lo, hi = criterion_cell(runs[label], op, backend, "lazy")
                    spread = "–" if ratio is None else f"{ratio:.2f} [{lo:.2f}–{hi:.2f}]"
                    line += f" {fmt_ns(raw)} | {fmt_ns(ours)} | {spread} | – |"
                out.append(line + " – | – |")
    out.append("")
    out.append("The raw rows: tokio's `Runtime::block_on` and `tokio::spawn`; smol: "
               "`async_io::block_on(executor.run(..))`, for `smol_multi` with two worker threads "
               "running the executor (`runner-tests/benches/smol_multi.rs`), as `SmolLoop::multi_thread(2)` "
               "does; glommio: one reused `LocalExecutor` (a fresh one leaks an eventfd each "
               "time, glommio#448), and its `cancel_10k_at_close` raw row cancels through the "
               "task handles, because glommio's executor drops none of its tasks when it goes. "
               "glommio's `spawn_local` polls the new task once inline, before it returns (its "
               "`spawn_and_run`), so the raw `spawn_join_10k` row polls each task while its "
               "memory is still in the cache; the runner never polls a task inside its spawn "
               "(asyncio's and tokio's order, and the `EventLoop` contract's), so it polls each "
               "task 10,000 spawns later. The row *raw spawn queued* spawns with glommio's "
               "`spawn_local_into` onto the current task queue, which queues the task instead, "
               "as the runner does: what that order alone costs glommio itself, shown for "
               "information and not a target. "
               "`contextvar_*` compare with a plain `thread_local!` `Cell`; `task_yield100` is "
               "the per-poll cost of the task wrapper (context, scope, panic catching, abort "
               "check). CPython is `asyncio.Runner` on the same operation "
               f"(`scripts/bench_asyncio.py`), from the **{labels[-1]}** run.\n")

    # Callgrind.
    out.append("## Instructions per operation (callgrind)\n")
    if not any(r.get("callgrind") for r in runs.values()):
        out.append("No run has instruction counts (valgrind was not installed).\n")
    else:
        out.append("`valgrind --tool=callgrind` on `runner-tests/benches/callgrind_ops.rs`, one process per "
                   "row and kind, run with N and 2N iterations: the difference divided by N is "
                   "one iteration, without the process start and the loop's creation. "
                   "Current-thread flavours only: on multi-thread loops the workers' spinning "
                   "depends on scheduling and the counts do not repeat. One measurement per run "
                   "(the counts are deterministic).\n")
        head = "| operation | backend |"
        rule = "|---|---|"
        for label in labels:
            head += f" {label}: raw | {label}: runner | {label}: ratio |"
            rule += "---|---|---|"
        out += [head, rule]
        cg_ops = order({op for r in runs.values() for op in (r.get("callgrind") or {})},
                       list(CG_OPS))
        for op in cg_ops:
            backends = order({b for r in runs.values()
                              for b in (r.get("callgrind") or {}).get(op, {})}, CG_BACKENDS)
            for backend in backends:
                line = f"| {op} | {backend} |"
                for label in labels:
                    row = (runs[label].get("callgrind") or {}).get(op, {}).get(backend, {})
                    raw, ours = row.get("raw"), row.get("runner")
                    ratio = f"{ours / raw:.2f}" if raw and ours else "–"
                    line += f" {fmt_int(raw)} | {fmt_int(ours)} | {ratio} |"
                out.append(line)
        out.append("")
        out.append("Operations: `run_ready` one `run` of a ready future; `run_yield10` one `run` "
                   "of a future that yields 10 times; `spawn_join_100` one `run` that spawns 100 "
                   "tasks and joins them; `task_yield100` one `run` that spawns a task yielding "
                   "100 times and joins it; `create_close` a loop made, one `run`, closed (glommio's "
                   "raw row reuses its executor); `cancel_100_at_close` a loop made, 100 pending "
                   "tasks spawned, closed.\n")

    # Allocations.
    out.append("## Allocations per pending task\n")
    out.append("`runner-tests/benches/alloc.rs`: a counting global allocator, on the spawning thread, over "
               "4,000 spawns of a task that stays pending (after 4,000 uncounted ones): heap "
               "allocations per spawn, and bytes the spawn leaves allocated (allocated minus "
               "freed). Exact, one measurement per run. The goal (issues 3 and 13): at most one "
               "allocation beyond the backend's own, judged at the two decimals shown (a third "
               "decimal is a container's amortised growth over the 4,000 spawns, not a "
               "per-task allocation).\n")
    head = "| backend | goal |"
    rule = "|---|---|"
    for label in labels:
        head += (f" {label}: raw allocs | {label}: runner allocs | {label}: extra | "
                 f"{label}: raw bytes | {label}: runner bytes |")
        rule += "---|---|---|---|---|"
    out += [head, rule]
    backends = order({a["backend"] for r in runs.values() for a in (r.get("alloc") or [])},
                     BACKENDS)
    for backend in backends:
        line = f"| {backend} | ≤ 1 extra |"
        for label in labels:
            rows = {a["kind"]: a for a in (runs[label].get("alloc") or [])
                    if a["backend"] == backend}
            raw, ours = rows.get("raw"), rows.get("runner")
            if raw and ours:
                extra = ours["allocs"] - raw["allocs"]
                line += (f" {raw['allocs']:.2f} | {ours['allocs']:.2f} | {extra:.2f} "
                         f"{'✓' if round(extra, 2) <= 1.0 else '✗'} | {raw['bytes']:.0f} | "
                         f"{ours['bytes']:.0f} |")
            else:
                line += " – | – | – | – | – |"
        out.append(line)
    out.append("")

    out.append("## Findings: where the runner's cost is, what was tried, what is next\n")
    out.append(FINDINGS_START)
    out.append(findings.strip("\n"))
    out.append(FINDINGS_END)
    return "\n".join(out) + "\n"


def current_findings():
    text = PAGE.read_text() if PAGE.exists() else ""
    if FINDINGS_START in text and FINDINGS_END in text:
        return text.split(FINDINGS_START, 1)[1].split(FINDINGS_END, 1)[0]
    # A page from before the markers: its findings section, as it was.
    m = re.search(r"^## Findings[^\n]*\n(.*)", text, re.S | re.M)
    return m.group(1) if m else "\n(none yet)\n"


def stored_runs(extra=None):
    runs = {}
    for path in PERF.glob("*.json"):
        runs[path.stem] = json.loads(path.read_text())
    names = sorted(runs, key=lambda k: ({"before": 0, "after": 1}.get(k, 2), runs[k]["date"]))
    ordered = {k: runs[k] for k in names}
    if extra:
        ordered.update(extra)
    return ordered


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="criterion repetitions (default 3)")
    ap.add_argument("--label", help="store the run as docs/perf/LABEL.json (before, after, ...)")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: render the page from the stored runs")
    args = ap.parse_args()
    if args.label and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.label):
        raise SystemExit("--label: letters, digits, '.', '_' or '-'")
    findings = current_findings()
    extra = None
    if not args.render_only:
        run = measure(args.reps)
        if args.label:
            PERF.mkdir(parents=True, exist_ok=True)
            (PERF / f"{args.label}.json").write_text(json.dumps(run, indent=1) + "\n")
        else:
            UNLABELLED.parent.mkdir(parents=True, exist_ok=True)
            UNLABELLED.write_text(json.dumps(run, indent=1) + "\n")
            extra = {"this run (unlabelled)": run}
    runs = stored_runs(extra)
    if not runs:
        raise SystemExit("no stored run to render: run with --label first")
    PAGE.write_text(render(runs, findings))
    log(f"wrote {PAGE.relative_to(ROOT)} ({', '.join(runs)})")


if __name__ == "__main__":
    main()
