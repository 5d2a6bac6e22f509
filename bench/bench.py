"""Speed of every cell: training step, warm-up step, VAA measurement, and the matmul bound.

    make bench                     # every shape, every cell in conf/cell/
    python bench/bench.py --cells gru lstm --shapes small --repeat 3

For each cell and shape (2 layers, batch 32; paper: hidden 256, length 600; small: hidden 32,
length 100; mnist: hidden 64, length 884, sequential MNIST with 100 black pixels) it prints
milliseconds per
  train   supervised training step (forward + backward, loss at the last step, Adam step)
  warm    warm-up step at the longest stabilisation horizon (200): prefix run + VAA* + backward
  vaa     one VAA measurement, N = 32 sequences, T = 10 000 constant-input steps, of the
          network as initialised (it stops early once every state has settled on a fixed
          point: src/vaa.py; a network whose states never settle costs the full T steps)
  bound   the training step's matrix-product FLOPs (counted by torch's FlopCounterMode)
          divided by the GFLOP/s a plain matrix product of the recurrent step's shape
          reaches, measured in the same run
and the ratios the targets of the speed issue ask for: train/bound (target <= 3) and
warm/train (target <= 1.5). For the cells PyTorch ships (gru, lstm, rnn), ``torch/us`` is
"what a user would pick instead": the same training step with ``nn.GRU``/``nn.LSTM``/
``nn.RNN`` (2 layers, same shape, same read-out, denormals flushed the same way), timed
interleaved with ours in this run, over its time here. With ``--authors PATH`` (a checkout of
github glambrechts/warmup), the authors' ``Model`` is timed the same way on the same shape,
interleaved with ours: ``authors/us`` for train, warm and vaa (their cells: gru, lstm, chrono,
mgu, brc, nbrc; their module imports wandb only to log, so a stand-in that logs nothing is
put in its place). Every ratio printed comes from this run; nothing is compared with
figures from another sitting.
Timings are medians over --repeat runs after one warm-up run. The machine is shared and
noisy: compare ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.rnn import StackedRNN  # noqa: E402
from src.vaa import measure_vaa  # noqa: E402
from src.warmup import WarmupModule  # noqa: E402

#: paper: the authors' long-dependency runs; small: the cpu scale's copy; mnist: sequential
#: MNIST at 784 pixels and 100 black steps, 2 x 64 units (the digits' size at the cpu scale).
SHAPES = {"paper": dict(hidden=256, length=600), "small": dict(hidden=32, length=100),
          "mnist": dict(hidden=64, length=784 + 100)}
BATCH, LAYERS, VAA_T = 32, 2, 10_000

#: The cells PyTorch ships, and their module: the baseline a user would pick instead.
TORCH = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}


def make_cell_class(name: str, length: int, **override):
    spec = yaml.safe_load((ROOT / "conf" / "cell" / f"{name}.yaml").read_text())
    spec.update({k: v for k, v in override.items() if k in spec})
    module, _, cls = spec.pop("_target_").rpartition(".")
    cell_cls = getattr(__import__(module, fromlist=[cls]), cls)
    if "t_max" in spec and spec["t_max"] is None:
        spec["t_max"] = length
    return lambda i, h: cell_cls(i, h, **spec)


def timed(fn, repeat: int) -> float:
    return timed_together([fn], repeat)[0]


def timed_together(fns, repeat: int) -> list[float]:
    """Median ms of each function, the functions run in turn within each repeat (interleaved:
    a slow moment of a shared machine hits all of them alike)."""
    for fn in fns:
        fn()  # warm-up run (allocations, lazy init)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [1000 * statistics.median(ts) for ts in times]


def torch_train_step(name: str, hidden: int, x, y):
    """The same training step with PyTorch's own module of the cell, or None."""
    if name not in TORCH:
        return None
    torch.manual_seed(0)
    rnn = TORCH[name](1, hidden, num_layers=LAYERS)
    head = torch.nn.Linear(hidden, 1)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        torch.nn.functional.mse_loss(head(out)[-1], y).backward()
        opt.step()

    return step


def load_authors(path: Path):
    """The authors' ``Model`` class from a checkout of their code (nothing of it is copied)."""
    import types

    if not (path / "models_pytorch" / "models.py").exists():
        sys.exit(f"error: --authors {path}: no models_pytorch/models.py there; give a checkout "
                 "of github glambrechts/warmup")
    sys.modules.setdefault("wandb", types.SimpleNamespace(log=lambda *a, **k: None))
    sys.path.insert(0, str(path))
    from models_pytorch.models import Model, cell_class

    return Model, set(cell_class)


def authors_steps(authors, name: str, hidden: int, length: int, x, y):
    """The authors' training step, warm-up step at horizon 200 and VAA (T = 10 000, N = 32) on
    the same shape and inputs as ours, or None for a cell they do not have."""
    if authors is None or name not in authors[1]:
        return None
    torch.manual_seed(0)
    extra = {"t_max": length} if name == "chrono" else {}
    model = authors[0](name, 1, hidden, LAYERS, 1, regression=True, **extra)
    mask = torch.zeros(length, BATCH, 1, dtype=torch.bool)
    mask[-1] = True
    target = y.view(1, BATCH)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def train():
        model.training_step(x, target, mask, 1e-3)

    def warm():  # their warmup_step at horizon 200, without its logging and printing
        opt.zero_grad()
        values = model.vaa_star(x, 200, 1e-4)
        torch.nn.functional.mse_loss(values, torch.full_like(values, 0.95)).backward()
        opt.step()

    return train, warm, lambda: model.vaa(x, VAA_T, 1e-4)


def matmul_gflops(batch: int, hidden: int, repeat: int = 200) -> float:
    """GFLOP/s of a plain (batch x hidden) @ (hidden x 3 hidden) product, the recurrent step's shape."""
    a, b = torch.randn(batch, hidden), torch.randn(hidden, 3 * hidden)
    out = torch.empty(batch, 3 * hidden)
    for _ in range(10):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(7):  # the best of several rounds: a shared machine only ever slows it down
        t = time.perf_counter()
        for _ in range(repeat):
            torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * batch * hidden * 3 * hidden * repeat / best / 1e9


def bench_cell(name: str, shape: str, repeat: int, gflops: float, authors=None) -> dict:
    hidden, length = SHAPES[shape]["hidden"], SHAPES[shape]["length"]
    torch.manual_seed(0)
    net = StackedRNN(make_cell_class(name, length), 1, hidden, LAYERS, 1, warm_fraction=1.0)
    x = torch.randn(length, BATCH, 1)
    y = torch.randn(BATCH, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad()
        pred, _ = net(x)
        torch.nn.functional.mse_loss(pred[-1], y).backward()
        opt.step()

    # FLOPs of the products the timed step runs; a library kernel (torch.lstm, used by the
    # LSTMs' fast path) and the C++ loops (src/cells/native.cpp) are opaque to the counter, so
    # those cells are counted on their plain autograd loop (fast=False), which runs the same
    # products step by step.
    counted = net
    cell = net.layers[0].warm
    if getattr(cell, "has_sequence_kernel", False) or cell.native_ops() is not None:
        counted = StackedRNN(make_cell_class(name, length, fast=False), 1, hidden, LAYERS, 1,
                             warm_fraction=1.0)
    with FlopCounterMode(display=False) as counter:
        pred, _ = counted(x)
        torch.nn.functional.mse_loss(pred[-1], y).backward()
    flops = counter.get_total_flops()

    warm = WarmupModule(net)
    warm_opt = torch.optim.Adam(net.warm_parameters(), lr=1e-2)

    def warm_step():
        warm_opt.zero_grad()
        values = warm.vaa_star_per_layer(x, horizon=200)
        ((values - 0.95) ** 2).mean().backward()
        warm_opt.step()

    def vaa():
        measure_vaa(net, x, steps=VAA_T, group_size=BATCH)

    baseline = torch_train_step(name, hidden, x, y)
    theirs = authors_steps(authors, name, hidden, length, x, y)
    train = [train_step, *([baseline] if baseline else []), *([theirs[0]] if theirs else [])]
    train_t = timed_together(train, repeat)
    out = {"train": train_t[0], "torch": train_t[1] if baseline else None,
           "bound": 1000 * flops / (gflops * 1e9), "gflop": flops / 1e9}
    if theirs:
        out["authors_train"] = train_t[-1]
        out["warm"], out["authors_warm"] = timed_together([warm_step, theirs[1]], repeat)
        out["vaa"], out["authors_vaa"] = timed_together([vaa, theirs[2]], max(1, repeat // 2))
    else:
        out["warm"] = timed(warm_step, repeat)
        out["vaa"] = timed(vaa, max(1, repeat // 2))
    return out


#: The speed issue's targets, per shape: (what, numerator, denominator, cells, least ratio).
#: The ratio is the other code's time over ours, measured in this run.
TARGETS = {
    "small": [("training step vs the authors'", "authors_train", "train", None, 3.0),
              ("training step vs torch's module", "torch", "train", None, 3.0),
              ("warm-up step vs the authors'", "authors_warm", "warm", None, 3.0),
              ("VAA vs the authors'", "authors_vaa", "vaa", None, 10.0)],
    "paper": [("LSTM warm-up step vs the authors'", "authors_warm", "warm", {"lstm", "chrono"},
               1.0)],
    # train/bound <= 2.5, said as bound/train >= 0.4
    "mnist": [("GRU matmul bound over its training step (train/bound <= 2.5)", "bound", "train",
               {"gru"}, 0.4)],
}


def target_report(shape: str, results: dict) -> list[str]:
    """One line per target: the cells that meet it, and by how much the others miss."""
    lines = []
    for what, theirs, ours, cells, least in TARGETS.get(shape, []):
        ratios = {name: r[theirs] / r[ours] for name, r in results.items()
                  if r.get(theirs) and (cells is None or name in cells)}
        if not ratios:
            continue
        met = [n for n, v in ratios.items() if v >= least]
        missed = [f"{n} {v:.2f}x (needs {least / v:.2f}x faster)"
                  for n, v in ratios.items() if v < least]
        lines.append(f"target {what} >= {least:g}x: met by {', '.join(met) or 'none'}"
                     + (f"; missed by {', '.join(missed)}" if missed else ""))
    return ["", *lines] if lines else []


def main() -> None:
    cells = sorted(p.stem for p in (ROOT / "conf" / "cell").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=cells, choices=cells)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--authors", type=Path, default=None,
                        help="a checkout of github glambrechts/warmup: time their code too")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the tables as markdown to this file, with the command "
                             "and the machine (e.g. docs/results/bench.md)")
    args = parser.parse_args()
    authors = load_authors(args.authors) if args.authors else None
    md: list[str] = []

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {BATCH}, {LAYERS} layers, "
          f"VAA T={VAA_T}; ms per operation (median of {args.repeat})")
    for shape in args.shapes:
        hidden, length = SHAPES[shape]["hidden"], SHAPES[shape]["length"]
        gflops = matmul_gflops(BATCH, hidden)
        print(f"\n## {shape}: hidden {hidden}, length {length}; plain matmul "
              f"{BATCH}x{hidden} @ {hidden}x{3 * hidden}: {gflops:.0f} GFLOP/s")
        print(f"{'cell':7} {'train':>8} {'warm':>8} {'vaa':>8} {'bound':>8} {'GFLOP':>7} "
              f"{'train/bound':>11} {'warm/train':>10} {'torch/us train':>15}"
              + (f" {'authors/us: train':>18} {'warm':>6} {'vaa':>6}" if authors else ""))
        results = {}
        for name in args.cells:
            r = results[name] = bench_cell(name, shape, args.repeat, gflops, authors)
            vs = f"{r['torch'] / r['train']:14.2f}x" if r["torch"] else f"{'-':>15}"
            theirs = ""
            if authors:
                theirs = (f" {r['authors_train'] / r['train']:17.2f}x"
                          f" {r['authors_warm'] / r['warm']:5.2f}x"
                          f" {r['authors_vaa'] / r['vaa']:5.2f}x") if "authors_train" in r else (
                          f" {'-':>18} {'-':>6} {'-':>6}")
            print(f"{name:7} {r['train']:8.1f} {r['warm']:8.1f} {r['vaa']:8.1f} {r['bound']:8.1f} "
                  f"{r['gflop']:7.2f} {r['train'] / r['bound']:11.1f} {r['warm'] / r['train']:10.2f} "
                  f"{vs}{theirs}", flush=True)
        for line in target_report(shape, results):
            print(line)
        md += markdown_table(shape, results, gflops, authors is not None)
    if args.markdown:
        write_markdown(args.markdown, md, args.threads, args.repeat)


def markdown_table(shape: str, results: dict, gflops: float, authors: bool) -> list[str]:
    hidden, length = SHAPES[shape]["hidden"], SHAPES[shape]["length"]
    head = ["cell", "train ms", "warm ms", "vaa ms", "bound ms", "train/bound", "warm/train",
            "torch/us train"] + (["authors/us train", "warm", "vaa"] if authors else [])
    lines = ["", f"## {shape}: hidden {hidden}, length {length}, batch {BATCH}, {LAYERS} layers "
             f"(plain matmul: {gflops:.0f} GFLOP/s)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        row = [name, f"{r['train']:.1f}", f"{r['warm']:.1f}", f"{r['vaa']:.1f}",
               f"{r['bound']:.1f}", f"{r['train'] / r['bound']:.1f}",
               f"{r['warm'] / r['train']:.2f}",
               f"{r['torch'] / r['train']:.2f}x" if r["torch"] else "–"]
        if authors:
            row += ([f"{r['authors_train'] / r['train']:.2f}x",
                     f"{r['authors_warm'] / r['warm']:.2f}x",
                     f"{r['authors_vaa'] / r['vaa']:.2f}x"] if "authors_train" in r
                    else ["–"] * 3)
        lines.append("| " + " | ".join(row) + " |")
    return lines + [line for line in target_report(shape, results) if line]


def write_markdown(path: Path, tables: list[str], threads: int, repeat: int) -> None:
    """The tables under a generated header: the command and the machine they came from."""
    from src import machine

    args = sys.argv[1:]
    if "--authors" in args:  # where a user's checkout is says nothing about the numbers
        args[args.index("--authors") + 1] = "AUTHORS_CHECKOUT"
    command = "python bench/bench.py " + " ".join(args)
    header = ["# Speed (generated)", "",
              f"Written by `{command}` on {machine.line(machine.describe(threads))}; "
              f"medians of {repeat} runs, ms per operation. Ratios compare codes timed "
              "interleaved in this run; absolute times differ between machines and moments."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + tables) + "\n")
    print(f"\nmarkdown: {path}")

if __name__ == "__main__":
    main()
