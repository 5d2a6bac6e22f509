"""The pipeline behind ``src/run.py``: build the data and the network, the two Lightning
stages, the VAA measurements, and what a run logs besides its metrics.

``src/run.py`` checks the config, ``src/tracking.py``'s ``Job`` owns the MLflow run, and these
functions do the work. They read the composed config (``DictConfig``); everything below them
(``src/rnn.py``, ``src/warmup/``, ``src/supervised.py``, ``src/vaa.py``, the cells and
benchmarks) takes plain Python arguments.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from pytorch_lightning.loggers import MLFlowLogger

from src import machine, tracking
from src.rules import Refusal, one_line
from src.rnn import StackedRNN
from src.supervised import SupervisedModule
from src.vaa import INIT_STEP, WARMUP_STEP, VAAMeter, vaa_metrics
from src.warmup import Excitation, WarmupModule, excitable, excite, select_excitation

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Lightning 2.6 with torch 2.13 warns about its own use of a torch internal, on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# The resume folder holds the network after warm-up before the first checkpoint: expected.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# fit(ckpt_path="last") on a fresh folder: Lightning's set-and-forget resume, nothing to load.
warnings.filterwarnings("ignore", message=r'.*ckpt_path="last"\) is set, but there is no last')


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger on the run that ``tracking.Job`` owns: the two stages'
    trainers each call ``finalize``, which would mark the run finished after the warm-up."""

    def finalize(self, status: str = "success") -> None:
        pass


class ProgressBar(RichProgressBar):
    """Lightning's rich progress display, without the logger's version number. The warm-up
    stage, which Lightning runs for ``max_steps`` with no epoch limit (``max_epochs=-1``, shown
    by Lightning as "Epoch 0/-2"), shows its steps against their total instead."""

    def stepped(self) -> bool:
        return self.trainer.max_epochs == -1 and self.trainer.max_steps > 0

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def _get_train_description(self, current_epoch: int) -> str:
        if self.stepped():
            return "Warm-up steps"
        return super()._get_train_description(current_epoch)

    @property
    def total_train_batches(self):
        return self.trainer.max_steps if self.stepped() else super().total_train_batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.stepped():  # count the stage's steps across the loader's passes
            batch_idx = trainer.global_step - 1
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def make_cell_factory(cell_cfg: DictConfig, seq_length: int):
    """``(input_size, hidden_size) -> cell``. A cell key ``t_max: null`` (the chrono LSTM's)
    is the one key filled from the data: the benchmark's sequence length (the image
    benchmarks' length is known only once they are built, so no interpolation can say it)."""
    extra = {"t_max": seq_length} if "t_max" in cell_cfg and cell_cfg.t_max is None else {}
    return instantiate(cell_cfg, _partial_=True, **extra)


def build(cfg: DictConfig):
    """The benchmark's data (generated or read now, so bad data fails before any run exists),
    the network, and the fixed input sequences VAA is measured on. What the data module, the
    cell or the network refuse, and a device or a method this machine or cell cannot give,
    is raised as :class:`src.rules.Refusal` (one line, no run). Seeds everything first, and
    sets torch's threads (``trainer.threads``)."""
    torch.set_flush_denormal(True)  # denormal gradients are very slow on CPUs (docs/performance.md)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    pl.seed_everything(cfg.seed, verbose=False)
    try:
        check_device(cfg)
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
        if (cfg.warmup.method == "excite" and cfg.warmup.gain is not None and warms(cfg, net)
                and not excitable(net)):  # a fixed gain for a cell that cannot take it
            raise ValueError(f"warmup.gain={cfg.warmup.gain}: cell {type(net.warm_cells()[0]).__name__} "
                             "declares no excitation block (excitation_rows); leave warmup.gain "
                             "null (the cell is then left as built) or use warmup.method=paper")
        dm.setup("fit")
        inputs = dm.train_inputs(cfg.vaa.groups * cfg.vaa.group_size)
    except (ValueError, FileNotFoundError, InstantiationException) as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
        raise Refusal(one_line(cause)) from err
    return dm, net, inputs


def vaa_meter(cfg: DictConfig, inputs) -> VAAMeter:
    """VAA as configured (``vaa.*``), on the fixed sequences ``inputs`` of :func:`build`."""
    return VAAMeter(inputs, cfg.vaa.steps, cfg.vaa.group_size, cfg.vaa.eps, cfg.seed)


def check_device(cfg: DictConfig) -> None:
    """A GPU asked for where torch sees none (Lightning's answer is a traceback)."""
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.accelerator={cfg.trainer.accelerator}: torch "
                         f"{torch.__version__} sees no GPU on this machine; use "
                         "trainer.accelerator=auto (a GPU where there is one, else the CPU) or cpu")


#: Groups (each its own constant input u) excite selects on: it compares 20-30 candidates, and
#: with more candidates the best score on few groups is more often luck (the per-step cost,
#: not the batch, sets the time).
EXCITE_SELECT_GROUPS = 8


def selection_inputs(dm, cfg: DictConfig, groups: int = EXCITE_SELECT_GROUPS):
    """The held-out inputs a warm-up selects on: ``groups`` groups of ``vaa.group_size``
    training sequences after the ones VAA is measured on (fewer groups, and the last sequences,
    when the training set is too small)."""
    size, skip = cfg.vaa.group_size, cfg.vaa.groups * cfg.vaa.group_size
    groups = max(1, min(groups, (dm.n_train - skip) // size))
    n = groups * size
    available = dm.train_inputs(min(dm.n_train, skip + n))
    return available[:, -n:]


def make_warmup(cfg: DictConfig, net: StackedRNN) -> WarmupModule:
    """Stage 1 as configured (``warmup.*``), the paper's method."""
    w = cfg.warmup
    return WarmupModule(
        net, lr=w.lr, vaa_target=w.vaa_target, max_horizon=w.max_horizon,
        horizon_growth=w.horizon_growth, eps=cfg.vaa.eps, method=w.method)


def quiet_srun_probe() -> None:
    """Outside a SLURM job, silence Lightning's warning that ``srun`` "is available on your
    system but is not used": it probes for SLURM on every fit, and on a host where ``srun``
    exists (a login node, this project's CI) a plain local run is not a mistake. Inside a SLURM
    job (``SLURM_JOB_ID`` set) the warning stays."""
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system")


def make_trainer(cfg: DictConfig, logger, out_dir: Path, callbacks=(), **kwargs) -> pl.Trainer:
    callbacks = list(callbacks)
    if cfg.trainer.progress:
        callbacks.append(ProgressBar(leave=True))
    quiet_srun_probe()
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
def train(cfg: DictConfig, dm, net: StackedRNN, meter: VAAMeter, logger, out_dir: Path,
          resume: Path | None = None, logged_until: tuple[int, int] = (0, 0)) -> dict:
    """The method: measure, warm up, measure, then fit (measuring after every epoch) and test.
    Returns the summary numbers, the best checkpoint's path, and the weights of each stage.

    ``resume``: the run's resume folder (:func:`src.tracking.resume_folder`). The network after
    warm-up is saved there (``warmed.pt``, with the random state and the numbers so far: the
    warm-up is a Lightning fit of its own, which the supervised fit cannot resume into), and
    Lightning's checkpoints of stage 2 (``best.ckpt``, and ``last.ckpt`` after every epoch). A
    run restarted on a folder that holds them skips what they cover: warm-up, and the epochs
    up to the last checkpoint (``trainer.fit(ckpt_path="last")``), not logging again the
    epochs up to ``logged_until`` (the last epoch whose losses, and whose VAA, are in the store).
    """
    state = resume / "warmed.pt" if resume is not None else None
    if state is not None and state.exists():
        saved = torch.load(state, weights_only=False)
        net.load_state_dict(saved["net"])
        torch.set_rng_state(saved["rng"])
        result, weights = saved["result"], saved["weights"]
    else:
        result: dict = {}
        weights = {"init": snapshot(net)}  # for the pictures of attractors (src/attractors/)
        measure(meter, net, logger, INIT_STEP, "init", result)
        if warms(cfg, net):
            result.update(warm_up(cfg, dm, net, logger, out_dir))
            weights["warmup"] = snapshot(net)
        measure(meter, net, logger, WARMUP_STEP, "warmup", result)
        if state is not None:
            partial = state.with_suffix(".tmp")
            torch.save({"net": net.state_dict(), "rng": torch.get_rng_state(),
                        "result": dict(result), "weights": weights}, partial)
            os.replace(partial, state)  # whole or absent, whenever the run is killed
    if dm.task == "rl":
        result.update(fit_rl(cfg, dm, net, meter if cfg.vaa.every_epoch else None, logger,
                             out_dir))
    else:
        result.update(fit_and_test(cfg, dm, net, meter if cfg.vaa.every_epoch else None, logger,
                                   out_dir, resume, logged_until))
    weights["trained"] = snapshot(net)  # the best validation weights, which were tested
    result["weights"] = weights
    return result


def measure(meter: VAAMeter, net, logger, step: int, stage: str, result: dict) -> None:
    m = meter(net)
    logger.log_metrics(vaa_metrics(m), step=step)
    result.update({f"vaa/{stage}": m.vaa, f"settled/{stage}": m.settled})


def warms(cfg: DictConfig, net: StackedRNN) -> bool:
    """Whether stage 1 runs: ``net`` has warmed sub-cells, and warm-up is active with steps
    (not ``warmup=none`` nor ``warmup=parallel``)."""
    return net.warms_up and cfg.warmup.active and cfg.warmup.steps > 0


def excitation(cfg: DictConfig, dm, net: StackedRNN):
    """``warmup.method=excite`` as configured, in place: :func:`src.warmup.select_excitation` on
    the held-out selection sequences, or the fixed ``warmup.gain``. Returns the
    :class:`src.warmup.Excitation` chosen (``tried`` empty for a fixed gain)."""
    if cfg.warmup.gain is not None:
        excite(net, cfg.warmup.gain)
        nan = float("nan")
        return Excitation((float(cfg.warmup.gain),) * len(net.warm_cells()), False, nan, nan,
                          nan, [])
    return select_excitation(net, selection_inputs(dm, cfg),
                             steps=cfg.warmup.select_steps,
                             group_size=cfg.vaa.group_size, eps=cfg.vaa.eps, seed=cfg.seed + 1)


def warm_up(cfg: DictConfig, dm, net: StackedRNN, logger, out_dir: Path) -> dict:
    """Stage 1: ``warmup.steps`` steps on the training inputs (as many passes as that takes),
    a Lightning stage that logs ``warmup/loss`` and ``warmup/vaa_star`` (mean and per layer)
    every step; or, with ``warmup.method=excite``, the self-excitation of the warmed units (no
    steps). Returns what the run's summary prints of it: the first and last loss and VAA*, and
    the last horizon (the paper's method; nothing for excite)."""
    if cfg.warmup.method == "excite":
        if not excitable(net):
            print(f"warmup.method=excite: {type(net.warm_cells()[0]).__name__} declares no "
                  "excitation block; the network is left as built (BRC and NBRC are bistable "
                  "by construction; a cell of your own: docs/cells.md)")
        chosen = excitation(cfg, dm, net)
        for i, (_, _, vaa, settled, fixed) in enumerate(chosen.tried):
            logger.log_metrics({"warmup/select_vaa": vaa, "warmup/select_settled": settled,
                                "warmup/select_fixed_points": fixed}, step=i)
        logger.log_metrics({**{f"warmup/gain_l{i}": g for i, g in enumerate(chosen.gains)},
                            "warmup/centre": float(chosen.centre)}, step=0)
        if chosen.tried:
            what = (f"gains {', '.join(f'{g:g}' for g in chosen.gains)} (per layer), candidate "
                    f"biases {'zeroed' if chosen.centre else 'as built'}" if any(chosen.gains)
                    else "the network as built")
            print(f"excite: {what}; the best of {len(chosen.tried)} candidates (held-out: "
                  f"{chosen.fixed_points:.1f} fixed points of {cfg.vaa.group_size}, VAA "
                  f"{chosen.vaa:.3f}, settled {chosen.settled:.0%})", flush=True)
        return {}
    stage = make_warmup(cfg, net)
    make_trainer(cfg, logger, out_dir, max_steps=cfg.warmup.steps, max_epochs=-1,
                 limit_val_batches=0, enable_checkpointing=False
                 ).fit(stage, train_dataloaders=dm.train_dataloader())
    (_, loss0, star0, _), (_, loss, star, horizon) = stage.history[0], stage.history[-1]
    return {"warmup/loss_first": loss0, "warmup/loss_last": loss, "warmup/vaa_star_first": star0,
            "warmup/vaa_star_last": star, "warmup/horizon_last": horizon}


#: A supervised stage whose mean training loss over an epoch exceeds this has diverged: chance
#: is an MSE of about 1 (copy, denoising) or a cross-entropy of 2.3 (10 classes), and the
#: largest epoch loss of the 400 runs of the cpu reproduce was 2.46 (docs/usage.md, "When a
#: run diverges").
DIVERGED = 1e3


def divergence_guard() -> EarlyStopping:
    """Lightning's own early stopping, used only for divergence: it stops the fit at the end
    of an epoch whose training loss is not finite or above :data:`DIVERGED` (never for
    patience), and :func:`fit_and_test` then raises."""
    return EarlyStopping(monitor="train/loss", mode="min", patience=10**9, check_finite=True,
                         divergence_threshold=DIVERGED, check_on_train_epoch_end=True)


def fit_and_test(cfg: DictConfig, dm, net: StackedRNN, meter: VAAMeter | None, logger,
                 out_dir: Path, resume: Path | None = None,
                 logged_until: tuple[int, int] = (0, 0)) -> dict:
    """Stage 2: supervised training, keeping the best validation weights, which are tested.
    With a ``resume`` folder, the checkpoints go there, ``last.ckpt`` too (written after every
    epoch, after its metrics), and the fit continues from a ``last.ckpt`` found there."""
    sup = SupervisedModule(net, dm.task, lr=cfg.trainer.lr, meter=meter,
                           logged_until=logged_until)
    checkpoints = ModelCheckpoint(
        dirpath=resume if resume is not None else out_dir / "checkpoints", filename="best",
        monitor="val/loss", mode="min", save_top_k=1, save_last=resume is not None,
        save_on_train_epoch_end=True, enable_version_counter=False)
    guard = divergence_guard()
    trainer = make_trainer(cfg, logger, out_dir, callbacks=[checkpoints, guard],
                           max_epochs=cfg.trainer.max_epochs)
    trainer.fit(sup, datamodule=dm, ckpt_path="last" if resume is not None else None)
    if guard.stopping_reason in (EarlyStoppingReason.DIVERGENCE_THRESHOLD,
                                 EarlyStoppingReason.NON_FINITE_METRIC):
        loss = float(trainer.callback_metrics.get("train/loss", float("nan")))
        raise FloatingPointError(
            f"supervised loss diverged: train/loss {loss:.3g} at epoch {guard.stopped_epoch + 1} "
            f"(above {DIVERGED:g}): lower trainer.lr (now {cfg.trainer.lr})")
    trainer.test(sup, datamodule=dm, ckpt_path="best", verbose=False)
    logger.log_metrics(sup.test_metrics, step=cfg.trainer.max_epochs)
    result = dict(sup.test_metrics, best_checkpoint=checkpoints.best_model_path)
    if sup.history and "vaa" in sup.history[-1]:
        result.update({"vaa/final": sup.history[-1]["vaa"],
                       "settled/final": sup.history[-1]["settled"]})
    return result


def fit_rl(cfg: DictConfig, task, net: StackedRNN, meter: VAAMeter | None, logger,
           out_dir: Path) -> dict:
    """Stage 2 of ``benchmark=tmaze``: the DRQN learns from the replay buffer (src/rl/drqn.py).
    The final network is kept (RL has no validation set to pick a best one by), evaluated by
    greedy roll-outs (``test/return``), and saved as the run's checkpoint."""
    import copy

    from src.rl.drqn import DRQNModule

    agent = DRQNModule(net, copy.deepcopy(net), task, lr=cfg.trainer.lr,
                       batch_size=cfg.trainer.batch_size, meter=meter, seed=cfg.seed)
    trainer = make_trainer(cfg, logger, out_dir, max_epochs=1, limit_val_batches=0,
                           enable_checkpointing=False)
    trainer.fit(agent)
    agent.finish()
    final = agent.history[-1]
    solved = agent.solved_at is not None
    # a maze never solved counts as solved one evaluation after the budget (censored)
    episodes = agent.solved_at if solved else task.episodes + task.eval_every
    summary = {"test/return": final["eval/return"], "solved": float(solved),
               "episodes_to_solve": float(episodes)}
    logger.log_metrics(summary, step=final["episode"])
    checkpoint = out_dir / "checkpoints" / "final.ckpt"
    trainer.save_checkpoint(checkpoint, weights_only=True)
    result = dict(summary, best_checkpoint=str(checkpoint))
    if agent.vaa_history:
        result.update({"vaa/final": agent.vaa_history[-1]["vaa"],
                       "settled/final": agent.vaa_history[-1]["settled"]})
    return result


def snapshot(net) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def log_run_files(cfg: DictConfig, name: str, net, result: dict, meter: VAAMeter,
                  out_dir: Path) -> None:
    """Log the best checkpoint, the weights at initialisation and after warm-up, and the
    picture of attractors, as artifacts of the active MLflow run, and its one-line
    description (:func:`description`, the run page's Description)."""
    import mlflow

    from src import attractors

    mlflow.set_tag("mlflow.note.content", description(cfg, name, result))

    if result["best_checkpoint"]:
        mlflow.log_artifact(result["best_checkpoint"], "checkpoint")
    weights = result.pop("weights")
    folder = out_dir / "weights"
    folder.mkdir(exist_ok=True)
    for stage in ("init", "warmup"):
        if stage in weights:
            torch.save(weights[stage], folder / f"{stage}.pt")
            mlflow.log_artifact(str(folder / f"{stage}.pt"), "weights")
    if cfg.vaa.pictures:
        mlflow.log_artifact(str(attractors.picture(
            net, weights, meter.inputs, meter.steps, meter.group_size, meter.seed, meter.eps,
            attractors.title_of(name, cfg), out_dir / "attractors.png")))


def log_data(dm) -> None:
    """The run's data as an MLflow dataset input (the runs table's Datasets column): its name,
    the digest of the splits it stores and its source (``data_record`` of the data module;
    the T-Maze has none)."""
    if not hasattr(dm, "data_record"):
        return
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    record = dm.data_record()
    mlflow.log_input(MetaDataset(CodeDatasetSource({"source": record["source"]}),
                                 name=record["name"], digest=record["digest"]),
                     context="training")


def description(cfg: DictConfig, name: str, result: dict) -> str:
    """What the run is and how it ended, in one line: ``gru-partial-copy-s0: cell gru, partial
    warm-up (paper, fraction 0.5), benchmark copy, seed 0; test/loss 0.409; VAA 0.031 -> 0.97
    -> 0.031``."""
    chosen = choices()
    outcome = "; ".join(f"{k} {v:.3g}" for k, v in result.items()
                        if k.startswith("test/") and isinstance(v, float))
    if "episodes_to_solve" in result:
        outcome = (f"solved after {result['episodes_to_solve']:.0f} episodes"
                   if result.get("solved") else "not solved")
    stages = [f"{result[f'vaa/{s}']:.3g}" for s in ("init", "warmup", "final")
              if f"vaa/{s}" in result]
    return (f"{name}: cell {chosen['cell']}, {chosen['warmup']} warm-up ({cfg.warmup.method}, "
            f"fraction {cfg.warmup.fraction}), benchmark {chosen['benchmark']}, seed "
            f"{cfg.seed}; {outcome}" + (f"; VAA {' -> '.join(stages)}" if stages else ""))


def choices() -> dict[str, str | None]:
    """The run's choices of the groups ``cell``, ``benchmark`` and ``warmup`` (Hydra's; None
    outside a Hydra job)."""
    made = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return {key: made.get(key) for key in ("cell", "benchmark", "warmup")}


def run_tags(cfg: DictConfig, digest: str) -> dict[str, str]:
    tags = choices()
    tags.update(seed=str(cfg.seed), git_sha=tracking.git_sha(), config_hash=digest,
                method=str(cfg.warmup.method), **tracking.owner_tags(),
                machine=machine.line())  # where the numbers came from: they differ by CPU
    if cfg.figure:
        tags["figure"] = str(cfg.figure)
    return tags
