"""The size search of the medium scale: at which size do the precision tasks decide the claims?

A size decides a benchmark when the no-warm-up baseline fails in at least 4 of 5 seeds (80 %)
and the paper's warm-up (full or partial) succeeds in at least 3 of 5 (60 %); success is the
summary's bar (src/figures/stats.py ``SOLVED``: denoising MSE below 0.1, sequential digits
accuracy at least 0.5).

An epoch budget is read off one longer run: a run of E epochs is the first E epochs of a
longer run with the same seed (constant learning rate, same batches), so its held-out
validation metric at epoch E is the outcome of the E-epoch run, judged on the validation
sequences (1/5 of the training set) instead of the test set. One run of 15 epochs gives the
outcome of every budget up to 15.

    # this project's runs (any sweep of src.run), e.g. denoising at length 300:
    python -m src.run -m seed=0,1,2,3,4 warmup=none,full,partial benchmark=denoising cell=gru \\
        net.hidden_size=64 benchmark.seq_length=300 benchmark.train_size=8000 \\
        trainer.max_epochs=15 mlflow.experiment=size-search
    # the authors' code on the same size (a checkout patched by bench/authors_patch.sh):
    python bench/size_search.py authors --authors /tmp/authors --benchmark denoising \\
        --seed 0 --variant partial --hidden 64 --length 300 --train 8000 --epochs 15 \\
        --out outputs/size-search/authors.jsonl
    # the table (docs/results/size-search.md):
    python bench/size_search.py table --experiment size-search \\
        --authors-runs outputs/size-search/authors.jsonl --budgets 10,12,15 \\
        --out docs/results/size-search.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("none", "full", "partial")
FAILS, SUCCEEDS = 0.8, 0.6  # the baseline fails in >= 80 % of seeds, a warm-up solves >= 60 %


def authors(args) -> None:
    """One run of the authors' code, as this project runs its own (1 thread, denormals
    flushed, warm-up 100 steps at lr 1e-2, horizons to 200, VAA target 0.95; training with
    Adam 1e-3, batch 32, their 80/20 split); appends a JSON line to ``--out``."""
    import contextlib
    import io

    import numpy as np
    import torch

    import importlib.util

    # bench/bench.py's loader checks the checkout, stands in for wandb and puts it on sys.path
    spec = importlib.util.spec_from_file_location("bench_speed", ROOT / "bench" / "bench.py")
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    Model = speed.load_authors(Path(args.authors))[0]
    import datasets as their
    from models_pytorch.utils import set_seed

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    set_seed(args.seed)
    if args.benchmark == "denoising":
        train = their.denoising(args.train, args.length, 5)
        test = their.denoising(args.test, args.length, 5)
    else:  # the 8x8 digits (their code reads MNIST only), in their Dataset format
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        order = np.random.RandomState(args.seed).permutation(len(y))
        x, y = (x[order] / 16.0 - 0.5).astype(np.float32), y[order]

        def dataset(x, y):
            n = len(y)
            inputs = np.concatenate([x.T[:, :, None], np.zeros((args.length, n, 1), np.float32)])
            masks = np.zeros((inputs.shape[0], n, 10), dtype=bool)
            masks[-1] = True
            return their.Dataset(inputs, y.reshape(1, -1, 1).astype(np.int64), masks,
                                 regression=False)

        cut = len(y) - args.test
        train, test = dataset(x[:cut], y[:cut]), dataset(x[cut:], y[cut:])
    partial = args.variant == "partial"
    model = Model(cell="gru", input_size=train.input_size, hidden_size=args.hidden, num_layers=2,
                  output_size=train.output_size, regression=train.regression, t_max=args.length,
                  double=partial)
    history: list[dict] = []
    started = time.time()
    with contextlib.redirect_stdout(io.StringIO()):  # their loop prints every batch
        if args.variant != "none":
            model.warmup(inputs=train.inputs, num_steps=100, learning_rate=1e-2, batch_size=32,
                         num_estimates_vaa=1, stabilization_increment=10, stabilization_max=200,
                         stabilization_measure=1000, epsilon=1e-4, vaa_target=0.95,
                         double=partial)
        model.train(dataset=train, num_epochs=args.epochs, learning_rate=1e-3, batch_size=32,
                    logger=history.append, num_estimates_vaa=1, stabilization_measure=1000)
        loss = model.eval(dataset=test, batch_size=32)
        acc = None if test.regression else model.eval(dataset=test, batch_size=32, accuracy=True)
    metric = "train/valid_loss" if train.regression else "train/valid_acc"
    row = {"code": "authors", "benchmark": args.benchmark, "hidden": args.hidden,
           "length": args.length, "train": args.train if train.regression else cut,
           "epochs": args.epochs, "variant": args.variant, "seed": args.seed,
           "valid": [float(h[metric]) for h in history if h.get("train/epoch", 0) >= 1],
           "test_loss": float(loss), "test_acc": acc, "seconds": round(time.time() - started, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "valid"}))


def ours(uri: str, experiment: str) -> list[dict]:
    """This project's completed runs of ``experiment``, as rows like :func:`authors`'."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        sys.exit(f"error: no experiment {experiment!r} at {uri}")
    rows = []
    for run in client.search_runs([exp.experiment_id], "tags.completed = 'true'",
                                  max_results=5000):
        p, tags = run.data.params, run.data.tags
        bench = tags.get("benchmark")
        if bench not in ("denoising", "seq_digits") or tags.get("cell") != "gru":
            continue
        key = "val/loss" if bench == "denoising" else "val/acc"
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        length = p.get("benchmark.seq_length") or p.get("benchmark.black_pixels")
        rows.append({"code": "ours", "benchmark": bench, "hidden": int(p["net.hidden_size"]),
                     "length": int(length), "train": int(p["benchmark.train_size"]),
                     "epochs": int(p["trainer.max_epochs"]), "variant": tags.get("warmup"),
                     "seed": int(tags.get("seed", p.get("seed", 0))),
                     "valid": [m.value for m in history],
                     "seconds": ((run.info.end_time or 0) - run.info.start_time) / 1000})
    return rows


def solved(row: dict, budget: int) -> bool | None:
    """Whether the run met the bar at epoch ``budget`` (``None``: it did not train so long)."""
    from src.figures.stats import SOLVED

    if len(row["valid"]) < budget:
        return None
    return SOLVED[row["benchmark"]].met(row["valid"][budget - 1])


def table(rows: list[dict], budgets: list[int]) -> list[str]:
    longest: dict[tuple, dict] = {}  # per size, code, variant and seed: its longest run
    for r in rows:
        key = (r["benchmark"], r["hidden"], r["length"], r["train"], r["code"], r["variant"],
               r["seed"])
        if key not in longest or len(r["valid"]) > len(longest[key]["valid"]):
            longest[key] = r
    by = defaultdict(list)
    for key, r in longest.items():
        by[key[:5]].append(r)
    lines = ["| benchmark | hidden | L / black | train | code | epochs | seeds | none | full "
             "| partial | decides | minutes a run |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (bench, hidden, length, train, code), sel in sorted(by.items()):
        for budget in budgets:
            shares, seeds = {}, set()
            for v in VARIANTS:
                outcomes = {r["seed"]: solved(r, budget) for r in sel if r["variant"] == v}
                outcomes = {seed: o for seed, o in outcomes.items() if o is not None}
                shares[v] = (sum(outcomes.values()), len(outcomes))
                seeds |= outcomes.keys()
            if not any(n for _, n in shares.values()):
                continue
            k0, n0 = shares["none"]
            fails = n0 and (n0 - k0) / n0 >= FAILS
            warmed = [k / n for k, n in (shares["full"], shares["partial"]) if n]
            decides = "yes" if fails and warmed and max(warmed) >= SUCCEEDS else "no"
            cost = [r["seconds"] * budget / r["epochs"] / 60 for r in sel]
            lines.append(f"| {bench} | {hidden} | {length} | {train} | {code} | {budget} | "
                         f"{len(seeds)} | " + " | ".join(f"{k}/{n}" if n else "–"
                                                          for k, n in shares.values())
                         + f" | {decides} | {sum(cost) / len(cost):.1f} |")
    return lines


def write_table(args) -> None:
    from src import tracking

    uri = tracking.resolve_uri(args.tracking_uri, ROOT)
    rows = [row for e in args.experiment or ["size-search"] for row in ours(uri, e)]
    for path in map(Path, args.authors_runs):
        if not path.is_file():
            sys.exit(f"error: --authors-runs {path}: no such file (the authors command writes it)")
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    budgets = [int(b) for b in args.budgets.split(",")]
    command = "python bench/size_search.py " + " ".join(sys.argv[1:])
    text = ["# Size search: where the precision tasks decide the claims", "",
            f"> Generated by `{command}`; do not edit by hand.", "",
            "GRU, 2 layers, batch 32, warm-up 100 steps (the paper's algorithm). Per size and "
            "epoch budget: the seeds whose held-out validation metric at that epoch meets the "
            "bar (denoising: MSE below 0.1; sequential digits: accuracy at least 0.5), per "
            "variant. *Decides*: the baseline (none) fails in at least 80 % of the seeds and "
            "full or partial warm-up succeeds in at least 60 %. *L / black*: the sequence length "
            "(denoising) or the black pixels after the 64 (digits). *Minutes a run*: the mean "
            "wall time of its runs, scaled to that budget, on the machine that made them, "
            "which ran 2 to 5 of them at once on 2 cores: a rough cost, not a benchmark. "
            "Method and caveats: bench/size_search.py.", ""]
    text += table(rows, budgets)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text) + "\n")
    print("\n".join(text[4:]))
    print(f"written: {out}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("authors", help="run the authors' code on one size, variant and seed")
    a.add_argument("--authors", required=True, help="a checkout of github glambrechts/warmup")
    a.add_argument("--benchmark", choices=("denoising", "seq_digits"), default="denoising")
    a.add_argument("--variant", choices=VARIANTS, default="none")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--hidden", type=int, default=64)
    a.add_argument("--length", type=int, default=300,
                   help="denoising: sequence length; seq_digits: black pixels after the 64")
    a.add_argument("--train", type=int, default=8000, help="denoising training sequences")
    a.add_argument("--test", type=int, default=None,
                   help="test sequences (default: 500 for denoising, 360 digits)")
    a.add_argument("--epochs", type=int, default=15)
    a.add_argument("--out", default=str(ROOT / "outputs" / "size-search" / "authors.jsonl"))
    t = sub.add_parser("table", help="write the table of the runs made so far")
    t.add_argument("--tracking-uri", default=None)
    t.add_argument("--experiment", action="append", default=None,
                   help="an MLflow experiment of this project's runs (repeatable; default size-search)")
    t.add_argument("--authors-runs", action="append", default=[],
                   help="a JSON-lines file written by the authors command (repeatable)")
    t.add_argument("--budgets", default="10,15", help="epoch budgets, comma-separated")
    t.add_argument("--out", default=str(ROOT / "docs" / "results" / "size-search.md"))
    args = p.parse_args(argv)
    if args.command == "authors":
        if args.test is None:
            args.test = 500 if args.benchmark == "denoising" else 360
        authors(args)
    else:
        write_table(args)


if __name__ == "__main__":
    main()
