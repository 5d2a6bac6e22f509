"""One run of the method: seed, build, stage 1 (warm-up), stage 2 (supervised), test.

    python -m src.run cell=gru warmup=partial
    python -m src.run -m cell=gru,lstm warmup=none,partial seed=0,1,2

Everything a run does is logged to one MLflow run (both stages): the resolved
config as params, the choices as tags, the metrics of INTERFACE.md, the
resolved config and the best checkpoint as artifacts.
This is the only module that reads Hydra config; everything below it takes
plain Python arguments.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import MLFlowLogger

from src import tracking
from src.rnn import StackedRNN
from src.supervised import SupervisedModule
from src.vaa import INIT_STEP, WARMUP_STEP, VAAMeter, vaa_metrics
from src.warmup import METHODS, WarmupModule

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Lightning 2.6 with torch 2.13 warns about its own use of a torch internal, on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger on a run that ``main`` owns: the two stages' trainers
    each call ``finalize``, which would mark the run finished after the warm-up."""

    def finalize(self, status: str = "success") -> None:
        pass


class ProgressBar(RichProgressBar):
    """Lightning's rich progress display, without the logger's version number."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class PrepareTracking(Callback):
    """Hydra callback: create the tracking store and experiment once, before a sweep's jobs
    start, so that parallel jobs (joblib, submitit launchers) never race on creating them."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        tracking.prepare_store(tracking.resolve_uri(config.mlflow.tracking_uri, Path.cwd()),
                               config.mlflow.experiment)


# --------------------------------------------------------------------- checks
#: The numeric keys and their kinds, checked before the ranges: a string from the command
#: line (`net.hidden_size=abc`) gets one line, not a TypeError from a comparison.
INTEGERS = ("warmup.steps", "warmup.max_horizon", "warmup.horizon_growth", "warmup.select_every",
            "warmup.select_steps", "net.hidden_size", "net.num_layers", "trainer.max_epochs",
            "trainer.batch_size", "vaa.steps", "vaa.groups", "vaa.group_size", "seed")
NUMBERS = ("warmup.fraction", "warmup.lr", "warmup.vaa_target", "trainer.lr", "vaa.eps")


def check_types(cfg: DictConfig) -> None:
    for keys, kind, name in ((INTEGERS, (int,), "an integer"), (NUMBERS, (int, float), "a number")):
        for key in keys:
            value = OmegaConf.select(cfg, key)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"{key}={value!r} must be {name}")
    for key in ("warmup.active", "vaa.every_epoch", "vaa.pictures", "net.parallel"):
        if not isinstance(OmegaConf.select(cfg, key), bool):
            raise ValueError(f"{key}={OmegaConf.select(cfg, key)!r} must be true or false")
    threads = cfg.trainer.threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ValueError(f"trainer.threads={threads!r} must be an integer or null")


def check_config(cfg: DictConfig) -> None:
    """Type and range checks of the plain keys, before anything is built (one-line errors).
    Each key has its rule in one place: the benchmark's keys and ``trainer.batch_size`` are
    checked by the data module (src/benchmarks/base.py), when it is built."""
    check_types(cfg)
    rules = [
        ("warmup.fraction", 0 <= cfg.warmup.fraction <= 1, "must be in [0, 1]"),
        ("warmup.steps", cfg.warmup.steps >= 0, "must be >= 0"),
        ("warmup.lr", cfg.warmup.lr > 0, "must be > 0"),
        ("warmup.vaa_target", 0 < cfg.warmup.vaa_target <= 1, "must be in (0, 1]"),
        ("warmup.max_horizon", cfg.warmup.max_horizon >= 1, "must be >= 1"),
        ("warmup.method", cfg.warmup.method in METHODS, f"must be one of {', '.join(METHODS)}"),
        ("warmup.select_every", cfg.warmup.select_every >= 1, "must be >= 1"),
        ("warmup.select_steps", cfg.warmup.select_steps >= 1, "must be >= 1"),
        ("net.hidden_size", cfg.net.hidden_size >= 1, "must be >= 1"),
        ("net.num_layers", cfg.net.num_layers >= 1, "must be >= 1"),
        ("trainer.max_epochs", cfg.trainer.max_epochs >= 1, "must be >= 1"),
        ("trainer.lr", cfg.trainer.lr > 0, "must be > 0"),
        ("trainer.threads", cfg.trainer.threads is None or cfg.trainer.threads >= 1,
         "must be >= 1 or null (torch's default)"),
        ("vaa.steps", cfg.vaa.steps >= 1, "must be >= 1"),
        ("vaa.groups", cfg.vaa.groups >= 1, "must be >= 1"),
        ("vaa.group_size", cfg.vaa.group_size >= 2, "must be >= 2"),
    ]
    for key, ok, rule in rules:
        if not ok:
            raise ValueError(f"{key}={OmegaConf.select(cfg, key)} {rule}")


def one_line(err: BaseException) -> str:
    """An error's message on one line: its lines joined, so that a cause that a library puts
    on the next line (Hydra's "Error loading 'x':" then the ImportError) is kept."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__


def abort(err: Exception) -> None:
    """Report a bad input on one line and leave no half-written run directory behind."""
    print(f"error: {one_line(err)}", file=sys.stderr)
    if HydraConfig.initialized():
        out = Path(HydraConfig.get().runtime.output_dir)
        if out.exists() and not (out / "checkpoints").exists():
            shutil.rmtree(out, ignore_errors=True)
    sys.exit(2)


# ---------------------------------------------------------------------- build
def make_cell_factory(cell_cfg: DictConfig, seq_length: int):
    """``(input_size, hidden_size) -> cell``. A cell key ``t_max: null`` (the chrono LSTM's)
    is the one key filled from the data: the benchmark's sequence length (the image
    benchmarks' length is known only once they are built, so no interpolation can say it)."""
    extra = {"t_max": seq_length} if "t_max" in cell_cfg and cell_cfg.t_max is None else {}
    return instantiate(cell_cfg, _partial_=True, **extra)


def build(cfg: DictConfig):
    """The benchmark's data (generated or read now, so bad data fails before any run exists),
    the network, and the fixed input sequences VAA is measured on."""
    dm = instantiate(cfg.benchmark, batch_size=cfg.trainer.batch_size)
    net = StackedRNN(
        make_cell_factory(cfg.cell, dm.seq_length),
        input_size=dm.input_size,
        hidden_size=cfg.net.hidden_size,
        num_layers=cfg.net.num_layers,
        output_size=dm.output_size,
        warm_fraction=cfg.warmup.fraction,
        parallel=cfg.net.parallel,
    )
    dm.setup("fit")
    vaa_inputs = dm.train_inputs(cfg.vaa.groups * cfg.vaa.group_size)
    return dm, net, vaa_inputs


#: Groups (each its own constant input u) the robust warm-up selects on: one u is noisy.
SELECT_GROUPS = 3


def selection_inputs(dm, cfg: DictConfig):
    """The robust warm-up's held-out inputs: ``SELECT_GROUPS`` groups of ``vaa.group_size``
    training sequences after the ones VAA is measured on (fewer groups, and the last sequences,
    when the training set is too small)."""
    size, skip = cfg.vaa.group_size, cfg.vaa.groups * cfg.vaa.group_size
    groups = max(1, min(SELECT_GROUPS, (dm.n_train - skip) // size))
    n = groups * size
    available = dm.train_inputs(min(dm.n_train, skip + n))
    return available[:, -n:]


def make_warmup(cfg: DictConfig, dm, net: StackedRNN) -> WarmupModule:
    """Stage 1 as configured (``warmup.*``)."""
    w = cfg.warmup
    return WarmupModule(
        net, lr=w.lr, vaa_target=w.vaa_target, max_horizon=w.max_horizon,
        horizon_growth=w.horizon_growth, eps=cfg.vaa.eps, method=w.method, steps=w.steps,
        select_every=w.select_every, select_steps=w.select_steps,
        select_inputs=selection_inputs(dm, cfg) if w.method == "robust" else None,
        select_group_size=cfg.vaa.group_size, select_seed=cfg.seed + 1)


def run_name(cfg: DictConfig) -> str:
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    warm = choices.get("warmup", f"f{cfg.warmup.fraction}")
    if cfg.net.parallel:
        warm += "-par"
    if (cfg.warmup.method != "paper" and cfg.warmup.fraction > 0 and cfg.warmup.steps > 0
            and cfg.warmup.active):
        warm += f"-{cfg.warmup.method}"
    return f"{choices.get('cell', 'cell')}-{warm}-{choices.get('benchmark', 'bench')}-s{cfg.seed}"


def make_trainer(cfg: DictConfig, logger, out_dir: Path, callbacks=(), **kwargs) -> pl.Trainer:
    callbacks = list(callbacks)
    if cfg.trainer.progress:
        callbacks.append(ProgressBar(leave=True))
    return pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=bool(cfg.trainer.progress),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # metrics go to MLflow by epoch (src/supervised.py); silences a warning
        default_root_dir=str(out_dir),
        **kwargs,
    )


# ---------------------------------------------------------------- the method
def train(cfg: DictConfig, dm, net: StackedRNN, meter: VAAMeter, logger, out_dir: Path) -> dict:
    """The method: measure, warm up, measure, then fit (measuring after every epoch) and test.
    Returns the summary numbers, the best checkpoint's path, and the weights of each stage."""
    result: dict = {}
    weights = {"init": snapshot(net)}  # for the pictures of attractors (src/attractors.py)
    measure(meter, net, logger, INIT_STEP, "init", result)
    if net.warms_up and cfg.warmup.active and cfg.warmup.steps > 0:  # not none nor parallel
        warm_up(cfg, dm, net, logger, out_dir)
        weights["warmup"] = snapshot(net)
    measure(meter, net, logger, WARMUP_STEP, "warmup", result)
    result.update(fit_and_test(cfg, dm, net, meter if cfg.vaa.every_epoch else None, logger,
                               out_dir))
    weights["trained"] = snapshot(net)  # the best validation weights, which were tested
    result["weights"] = weights
    return result


def measure(meter: VAAMeter, net, logger, step: int, stage: str, result: dict) -> None:
    m = meter(net)
    logger.log_metrics(vaa_metrics(m), step=step)
    result.update({f"vaa/{stage}": m.vaa, f"settled/{stage}": m.settled})


def warm_up(cfg: DictConfig, dm, net: StackedRNN, logger, out_dir: Path) -> None:
    """Stage 1: ``warmup.steps`` steps on the training inputs (as many passes as that takes)."""
    make_trainer(cfg, logger, out_dir, max_steps=cfg.warmup.steps, max_epochs=-1,
                 limit_val_batches=0, enable_checkpointing=False
                 ).fit(make_warmup(cfg, dm, net), train_dataloaders=dm.train_dataloader())


def fit_and_test(cfg: DictConfig, dm, net: StackedRNN, meter: VAAMeter | None, logger,
                 out_dir: Path) -> dict:
    """Stage 2: supervised training, keeping the best validation weights, which are tested."""
    sup = SupervisedModule(net, dm.task, lr=cfg.trainer.lr, meter=meter)
    best = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best", monitor="val/loss",
                           mode="min", save_top_k=1, save_weights_only=True)
    trainer = make_trainer(cfg, logger, out_dir, callbacks=[best], max_epochs=cfg.trainer.max_epochs)
    trainer.fit(sup, datamodule=dm)
    trainer.test(sup, datamodule=dm, ckpt_path="best", verbose=False)
    logger.log_metrics(sup.test_metrics, step=cfg.trainer.max_epochs)
    result = dict(sup.test_metrics, best_checkpoint=best.best_model_path)
    if sup.history and "vaa" in sup.history[-1]:
        result.update({"vaa/final": sup.history[-1]["vaa"],
                       "settled/final": sup.history[-1]["settled"]})
    return result


def snapshot(net) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def log_pictures(cfg: DictConfig, run: tracking.TrackedRun, name: str, net, weights: dict,
                 meter: VAAMeter, out_dir: Path) -> None:
    """Log the weights at initialisation and after warm-up, and draw the attractors."""
    from src import attractors

    folder = out_dir / "weights"
    folder.mkdir(exist_ok=True)
    for stage in ("init", "warmup"):
        if stage in weights:
            torch.save(weights[stage], folder / f"{stage}.pt")
            run.log_artifact(folder / f"{stage}.pt", "weights")
    if cfg.vaa.pictures:
        run.log_artifact(attractors.picture(
            net, weights, meter.inputs, meter.steps, meter.group_size, meter.seed, meter.eps,
            attractors.title_of(name, cfg), out_dir / "attractors.png"))


def run_tags(cfg: DictConfig, digest: str) -> dict[str, str]:
    choices = HydraConfig.get().runtime.choices
    tags = {key: choices.get(key) for key in ("cell", "benchmark", "warmup")}
    tags.update(seed=str(cfg.seed), git_sha=tracking.git_sha(), config_hash=digest,
                method=str(cfg.warmup.method))
    if cfg.figure:
        tags["figure"] = str(cfg.figure)
    return tags


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    torch.set_flush_denormal(True)  # denormal gradients are very slow on CPUs (CALIBRATION.md)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    try:
        check_config(cfg)
    except ValueError as err:
        abort(err)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    uri = tracking.resolve_uri(cfg.mlflow.tracking_uri, Path.cwd())
    digest, name = tracking.config_hash(resolved), run_name(cfg)
    if cfg.mlflow.skip_finished:  # reuse before building anything: resumed sweeps are quick
        done = tracking.find_completed(uri, cfg.mlflow.experiment, digest)
        if done is not None:
            print(f"reusing completed run {name} ({done.info.run_id}) from {uri}")
            return float(done.data.metrics.get("test/loss", float("nan")))

    try:
        pl.seed_everything(cfg.seed, verbose=False)
        dm, net, vaa_inputs = build(cfg)
    except (ValueError, FileNotFoundError, InstantiationException) as err:
        abort(err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err)
    meter = VAAMeter(vaa_inputs, cfg.vaa.steps, cfg.vaa.group_size, cfg.vaa.eps, cfg.seed)

    # the run is created only now, after the checks and the build: bad input leaves none behind
    config_file = out_dir / "config.yaml"
    OmegaConf.save(cfg, config_file, resolve=True)
    started = time.time()
    with tracking.open_run(uri, cfg.mlflow.experiment, name, run_tags(cfg, digest),
                           tracking.flatten(resolved), files=[config_file]) as run:
        logger = RunLogger(tracking_uri=uri, run_id=run.run_id)
        result = train(cfg, dm, net, meter, logger, out_dir)
        if result["best_checkpoint"]:
            run.log_artifact(result["best_checkpoint"], "checkpoint")
        log_pictures(cfg, run, name, net, result.pop("weights"), meter, out_dir)
    print_summary(name, run.run_id, uri, cfg, result, time.time() - started, out_dir)
    return float(result["test/loss"])


def print_summary(name, run_id, uri, cfg, result, seconds, out_dir) -> None:
    stages = [s for s in ("init", "warmup", "final") if f"vaa/{s}" in result]
    vaa = " -> ".join(f"{result[f'vaa/{s}']:.3f}" for s in stages)
    settled = " -> ".join(f"{result[f'settled/{s}']:.0%}" for s in stages)
    n = cfg.vaa.group_size
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("test/"))
    print(
        f"\n== {name} done in {seconds:.0f} s\n"
        f"   {metrics}\n"
        f"   vaa (init -> warm-up -> final) {vaa}   (1/{n} = one attractor, 1 = {n} attractors)\n"
        f"   settled                         {settled}   (share of the final states on a fixed point)\n"
        f"   mlflow run {run_id} in experiment '{cfg.mlflow.experiment}' at {uri}\n"
        f"   browse: make ui      outputs: {out_dir}"
        + (f"\n   attractors: {out_dir / 'attractors.png'}   (python -m src.attractors {run_id})"
           if cfg.vaa.pictures else "")
    )


if __name__ == "__main__":
    main()
