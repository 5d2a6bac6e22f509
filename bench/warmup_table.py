"""How often warm-up leaves true attractors: the success-rate table of docs/excite.md.

    python bench/warmup_table.py                         # every cell x {full, partial} x {paper, excite},
                                                         # seeds 0-9, 1 and 2 threads (`make warmup-table`)
    python bench/warmup_table.py --cells gru lstm --methods excite --seeds 10 11 12 --threads 1

Each row warms up the network of the default config (2 layers of 32 units,
copy-first-input of length 100; 100 Adam steps for paper, the
self-excitation chosen by src/warmup/excite.py::select_excitation for excite) and
measures it with the VAA of
docs/method.md on N = 32 training sequences at T = 10 000 (`src/vaa.py`), before and
after. A run *succeeds* when, after warm-up, VAA >= 0.5 and at least 90 % of
the final states sit on a fixed point (`settled`): oscillating, chaotic or
still-drifting states are not attractors.

Columns: successes / runs; runs with VAA >= 0.5 whatever the states do; mean
VAA; mean attractors (N * VAA) and of them fixed points; mean settled share;
mean warm-up seconds (wall time of the stage alone). Runs with 1 thread go two
at a time (one per core), runs with 2 threads one at a time.

Results are appended to ``outputs/warmup_table/results.jsonl`` as they finish;
a rerun skips the rows already there (``--fresh`` starts over), so an
interrupted table resumes. The table is printed and written to ``table.md``
beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N, T = 32, 10_000
FRACTIONS = {"full": 1.0, "partial": 0.5}


def success(row: dict) -> bool:
    return row["vaa"] >= 0.5 and row["settled"] >= 0.9


def _exit_with(parent: int) -> None:
    """A worker's watch: exit as soon as the table's process is gone (killed, by any signal),
    instead of computing on, orphaned, beside whatever runs next."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init(threads: int, parent: int) -> None:
    import logging
    import threading
    import warnings

    import torch

    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def warm_and_measure(job: dict) -> dict:
    """One row: build, measure, warm up (timed), measure again."""
    import pytorch_lightning as pl
    from hydra import compose, initialize_config_dir

    from src import schema
    from src.pipeline import excitation
    from src.pipeline import build, make_warmup
    from src.tracking import METHOD_VERSIONS
    from src.vaa import measure_vaa

    schema.register()

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"cell={job['cell']}", f"warmup={job['warmup']}", f"warmup.method={job['method']}",
            f"seed={job['seed']}", "trainer.progress=false", *job.get("overrides", [])])
    pl.seed_everything(cfg.seed, verbose=False)
    dm, net, inputs = build(cfg)
    inputs = inputs[:, :N]
    before = measure_vaa(net, inputs, steps=T, group_size=N, seed=cfg.seed)
    started = time.perf_counter()
    chosen = {}
    if cfg.warmup.method == "excite":
        e = excitation(cfg, dm, net)
        chosen = {"gains": list(e.gains), "centre": e.centre}
    else:
        pl.Trainer(max_steps=cfg.warmup.steps, max_epochs=-1, logger=False,
                   enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False).fit(make_warmup(cfg, net), dm.train_dataloader())
    seconds = time.perf_counter() - started
    after = measure_vaa(net, inputs, steps=T, group_size=N, seed=cfg.seed)
    return {**job, "vaa_init": before.vaa, "vaa": after.vaa, "attractors": after.attractors,
            "fixed_points": after.fixed_points, "settled": after.settled, "seconds": seconds,
            "version": METHOD_VERSIONS.get(job["method"], 1), **chosen}


def key(row: dict) -> tuple:
    return (row["cell"], row["warmup"], row["method"], row["seed"], row["threads"])


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["cell"], row["warmup"], row["method"]), []).append(row)
    lines = [
        f"Warm-up success (VAA >= 0.5 at T = {T:,} with >= 90 % of states settled), N = {N}",
        "",
        "| cell | warm-up | method | success | VAA >= 0.5 | mean VAA | attractors (fixed points) "
        "| settled | warm-up s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (cell, warmup, method), rs in sorted(groups.items()):
        ok = sum(success(r) for r in rs)
        high = sum(r["vaa"] >= 0.5 for r in rs)
        mean = {k: statistics.fmean(r[k] for r in rs)
                for k in ("vaa", "attractors", "fixed_points", "settled", "seconds")}
        lines.append(
            f"| {cell} | {warmup} | {method} | {ok}/{len(rs)} ({ok / len(rs):.0%}) | {high}/{len(rs)} "
            f"| {mean['vaa']:.3f} | {mean['attractors']:.1f} ({mean['fixed_points']:.1f}) "
            f"| {mean['settled']:.0%} | {mean['seconds']:.1f} |")
    parts = []
    for t in sorted({r["threads"] for r in rows}):
        seeds = sorted({r["seed"] for r in rows if r["threads"] == t})
        parts.append(f"{t} thread{'s' if t > 1 else ''}: seeds {seeds[0]}-{seeds[-1]}")
    lines += ["", f"Runs per row: {'; '.join(parts)} (pooled)."]
    return "\n".join(lines)


def main() -> None:
    cells = sorted(p.stem for p in (ROOT / "conf" / "cell").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=cells, choices=cells)
    parser.add_argument("--warmups", nargs="+", default=list(FRACTIONS), choices=list(FRACTIONS))
    parser.add_argument("--methods", nargs="+", default=["paper", "excite"],
                        choices=["paper", "excite"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "warmup_table")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if args.fresh and results.exists():
        results.unlink()
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    # rows of an earlier version of their method (src/tracking.py::METHOD_VERSIONS; rows made
    # before versions were recorded are of version 1, or 2 for excite rows with "gains") are stale
    from src.tracking import METHOD_VERSIONS
    done = [r for r in done if r.get("version", 1 + ("gains" in r)) == METHOD_VERSIONS.get(r["method"], 1)]
    seen = {key(r) for r in done}
    for threads in args.threads:
        jobs = [dict(cell=c, warmup=w, method=m, seed=s, threads=threads, overrides=args.override)
                for c in args.cells for w in args.warmups for m in args.methods for s in args.seeds]
        jobs = [j for j in jobs if key(j) not in seen]
        if not jobs:
            continue
        workers = 2 // threads
        print(f"{len(jobs)} runs with {threads} thread(s), {workers} at a time", flush=True)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init,
                                 initargs=(threads, os.getpid())) as pool:
            for i, row in enumerate(pool.map(warm_and_measure, jobs), 1):
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done.append(row)
                print(f"[{i}/{len(jobs)}] {row['cell']} {row['warmup']} {row['method']} "
                      f"s{row['seed']} t{threads}: VAA {row['vaa_init']:.3f} -> {row['vaa']:.3f}, "
                      f"settled {row['settled']:.0%}, {row['seconds']:.1f} s", flush=True)
    wanted = {(c, w, m, s, t) for c in args.cells for w in args.warmups for m in args.methods
              for s in args.seeds for t in args.threads}
    text = table([r for r in done if key(r) in wanted])
    (args.out / "table.md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
