"""Reachable multistability of every cell at initialisation and after warm-up.

    python bench/multistability.py                      # default size, T = 10 000, seeds 0 1 2
    python bench/multistability.py --cells gru brc --seeds 0 --steps 1000

For each cell of conf/cell/: the network of the default config (2 layers of 32
units on copy-first-input, length 100) with full warm-up; VAA and the attractor
count (N = 32) at initialisation and after the 100 warm-up steps, measured
with the VAA of METHOD.md (T constant-input steps), mean over seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from src.run import build  # noqa: E402
from src.vaa import measure_vaa  # noqa: E402
from src.warmup import WarmupModule  # noqa: E402


def warm_and_measure(cell: str, seed: int, steps: int, overrides=()) -> tuple[float, float]:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"cell={cell}", "warmup=full", f"seed={seed}",
                                           *overrides])
    pl.seed_everything(seed, verbose=False)
    dm, net, inputs = build(cfg)
    before = measure_vaa(net, inputs, steps=steps, seed=seed)[0]
    pl.Trainer(max_steps=cfg.warmup.steps, max_epochs=-1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(
        WarmupModule(net, lr=cfg.warmup.lr, vaa_target=cfg.warmup.vaa_target), dm.train_dataloader())
    after = measure_vaa(net, inputs, steps=steps, seed=seed)[0]
    return before, after


def main() -> None:
    cells = sorted(p.stem for p in (ROOT / "conf" / "cell").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=cells)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_000, help="T of the VAA measurement")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    import logging
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    print(f"VAA (N = 32, T = {args.steps}), mean over seeds {args.seeds}; 1/32 = 0.031 is one attractor")
    print("| cell | VAA at init | attractors at init | VAA after full warm-up | attractors after |")
    print("|---|---|---|---|---|")
    for cell in args.cells:
        pairs = [warm_and_measure(cell, s, args.steps) for s in args.seeds]
        b = sum(p[0] for p in pairs) / len(pairs)
        a = sum(p[1] for p in pairs) / len(pairs)
        print(f"| {cell} | {b:.3f} | {32 * b:.1f} | {a:.3f} | {32 * a:.1f} |", flush=True)


if __name__ == "__main__":
    main()
