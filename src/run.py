"""One run of the method: seed, build, stage 1 (warm-up), stage 2 (supervised), test.

    python -m src.run cell=gru warmup=partial
    python -m src.run -m cell=gru,lstm warmup=none,partial seed=0,1,2

Everything a run does is logged to one MLflow run (both stages): the resolved
config as params, the choices as tags, the metrics of docs/usage.md, the
resolved config, the best checkpoint, the stages' weights and the picture of
attractors as artifacts. This module checks the config (``src/checks.py``) and the
tracking server before importing torch, Lightning or MLflow, so that a bad value is
refused at once; the work is ``src/pipeline.py``. These two modules read the Hydra
config; everything below them takes plain Python arguments.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src import schema, tracking
from src.checks import check_config, one_line

schema.register()  # the config's types (conf/config.yaml's defaults list names `schema`)

#: What ``from src.run import build`` and the like find in src/pipeline.py, imported on first
#: use: the checks above run before torch and Lightning are imported.
PIPELINE = ("build", "train", "make_cell_factory", "make_trainer", "make_warmup",
            "selection_inputs", "RunLogger", "ProgressBar")


def __getattr__(name: str):
    if name in PIPELINE:
        from src import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'src.run' has no attribute {name!r}")

class PrepareTracking(Callback):
    """Hydra callback: create the tracking store and experiment once, before a sweep's jobs
    start, so that parallel jobs (joblib, submitit launchers) never race on creating them."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        tracking.prepare_store(tracking.resolve_uri(config.mlflow.tracking_uri, Path.cwd()),
                               config.mlflow.experiment)


def abort(err: Exception) -> None:
    """Report a bad input on one line and leave no half-written run directory behind."""
    print(f"error: {one_line(err)}", file=sys.stderr)
    if HydraConfig.initialized():
        out = Path(HydraConfig.get().runtime.output_dir)
        if out.exists() and not (out / "checkpoints").exists():
            shutil.rmtree(out, ignore_errors=True)
    sys.exit(2)


# ---------------------------------------------------------------------- build
def run_name(cfg: DictConfig) -> str:
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    warm = choices.get("warmup", f"f{cfg.warmup.fraction}")
    if cfg.net.parallel:
        warm += "-par"
    if (cfg.warmup.method != "paper" and cfg.warmup.fraction > 0 and cfg.warmup.steps > 0
            and cfg.warmup.active):
        warm += f"-{cfg.warmup.method}"
    bench = choices.get("benchmark", "bench")
    if "length" in cfg.benchmark:  # the T-Maze: its length tells runs of one sweep apart
        bench += str(cfg.benchmark.length)
    elif cfg.figure == "memory_horizon":  # the sweep over copy's length L
        bench += str(cfg.benchmark.seq_length)
    return f"{choices.get('cell', 'cell')}-{warm}-{bench}-s{cfg.seed}"


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Check, seed, build; then, inside the MLflow run: warm up, fit, test."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    tracking.quiet_mlflow()
    uri = tracking.resolve_uri(cfg.mlflow.tracking_uri, Path.cwd())
    try:  # before any heavy import: a refusal takes about a second
        check_config(cfg)
        tracking.check_reachable(uri)
    except (ValueError, ConnectionError) as err:
        abort(err)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    digest, name = tracking.config_hash(resolved), run_name(cfg)
    if cfg.mlflow.skip_finished:  # reuse before building anything: resumed sweeps are quick
        done = tracking.find_completed(uri, cfg.mlflow.experiment, digest)
        if done is not None:
            print(f"reusing completed run {name} ({done.info.run_id}) from {uri}")
            return float(done.data.metrics.get("test/loss", float("nan")))

    import pytorch_lightning as pl
    import torch
    from hydra.errors import InstantiationException

    from src import pipeline
    from src.vaa import VAAMeter
    from src.warmup import excitable

    torch.set_flush_denormal(True)  # denormal gradients are very slow on CPUs (docs/performance.md)
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        abort(ValueError(f"trainer.accelerator={cfg.trainer.accelerator}: torch "
                         f"{torch.__version__} sees no GPU on this machine; use "
                         "trainer.accelerator=auto (a GPU where there is one, else the CPU) or cpu"))
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    try:
        pl.seed_everything(cfg.seed, verbose=False)
        dm, net, vaa_inputs = pipeline.build(cfg)
        if (cfg.warmup.method == "excite" and cfg.warmup.gain is not None
                and pipeline.warms(cfg, net)
                and not excitable(net)):  # a fixed gain for a cell that cannot take it
            raise ValueError(f"warmup.gain={cfg.warmup.gain}: cell {cfg.cell._target_.split('.')[-1]} "
                             "declares no excitation block (excitation_rows); leave warmup.gain "
                             "null (the cell is then left as built) or use warmup.method=paper")
    except (ValueError, FileNotFoundError, InstantiationException) as err:
        abort(err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err)
    meter = VAAMeter(vaa_inputs, cfg.vaa.steps, cfg.vaa.group_size, cfg.vaa.eps, cfg.seed)

    # the run is created only now, after the checks and the build: bad input leaves none behind.
    # A supervised run keeps what it needs to be resumed in a folder of its config digest; the
    # same command, after a kill, continues the same MLflow run (docs/usage.md, "Reuse, resume").
    folder = (tracking.resume_folder(Path.cwd(), uri, cfg.mlflow.experiment, digest)
              if dm.task != "rl" else None)
    if folder is not None and tracking.folder_in_use(uri, cfg.mlflow.experiment, folder):
        print(f"a run of this config is RUNNING in the store, from another live process or "
              f"another machine ({folder}): this one runs without a resume folder")
        folder = None
    found = tracking.find_resumable(uri, cfg.mlflow.experiment, digest, folder) if folder else None
    resumed, logged_until = found if found else (None, (0, 0))
    for stale in tracking.close_abandoned(uri, cfg.mlflow.experiment, digest, keep=resumed):
        print(f"marked run {stale} KILLED: it was left RUNNING by a process that is gone "
              "(killed or crashed); this run starts afresh")
    if resumed:
        print(f"resuming run {name} ({resumed}) from its last checkpoint in {folder}")
    elif folder is not None and folder.exists():
        shutil.rmtree(folder)  # a stale folder: killed during warm-up, or not resumable
    config_file = out_dir / "config.yaml"
    OmegaConf.save(cfg, config_file, resolve=True)
    started = time.time()
    try:
        with tracking.open_run(uri, cfg.mlflow.experiment, name, pipeline.run_tags(cfg, digest),
                               tracking.flatten(resolved), files=[config_file],
                               resume=resumed) as run:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "run_id").write_text(run.run_id)
            logger = pipeline.RunLogger(tracking_uri=uri, run_id=run.run_id)
            result = pipeline.train(cfg, dm, net, meter, logger, out_dir, folder, logged_until)
            if result["best_checkpoint"]:
                run.log_artifact(result["best_checkpoint"], "checkpoint")
            pipeline.log_pictures(cfg, run, name, net, result.pop("weights"), meter, out_dir)
    except FloatingPointError as err:  # a diverged stage: the run is FAILED, its folder kept
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # nothing to resume: it would diverge again
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {one_line(err)} (run {name} marked FAILED; HYDRA_FULL_ERROR=1 for the "
              "traceback)", file=sys.stderr)
        sys.exit(1)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)  # finished: the checkpoint is in the store
    print_summary(name, run.run_id, uri, cfg, result, time.time() - started, out_dir,
                  tracking.ui_url(uri, run.experiment_id, run.run_id))
    # what a Hydra sweeper minimises: the test loss, or for the T-Maze the episodes to solve it
    return float(result["test/loss"] if "test/loss" in result else result["episodes_to_solve"])


def print_summary(name, run_id, uri, cfg, result, seconds, out_dir, url) -> None:
    stages = [s for s in ("init", "warmup", "final") if f"vaa/{s}" in result]
    vaa = " -> ".join(f"{result[f'vaa/{s}']:.3f}" for s in stages)
    settled = " -> ".join(f"{result[f'settled/{s}']:.0%}" for s in stages)
    n = cfg.vaa.group_size
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("test/"))
    if "episodes_to_solve" in result:
        metrics += (f"  solved after {result['episodes_to_solve']:.0f} episodes" if result["solved"]
                    else "  not solved within the episodes")
    warm = ""
    if "warmup/loss_first" in result:  # the paper's method: its own objective, at its horizons
        warm = (f"   warm-up ({cfg.warmup.steps} Adam steps on VAA*) loss "
                f"{result['warmup/loss_first']:.3f} -> {result['warmup/loss_last']:.3f}, VAA* "
                f"{result['warmup/vaa_star_first']:.3f} -> {result['warmup/vaa_star_last']:.3f} "
                f"(states apart after T = {result['warmup/horizon_last']} steps)\n")
    print(
        f"\n== {name} done in {seconds:.0f} s\n"
        f"   {metrics}\n" + warm +
        f"   vaa (init -> warm-up -> final) {vaa}   (states apart after T = {cfg.vaa.steps}; "
        f"1/{n} = one attractor, 1 = {n} attractors)\n"
        f"   settled                         {settled}   (share of the final states on a fixed point)\n"
        f"   mlflow run {run_id} in experiment '{cfg.mlflow.experiment}' at {uri}\n"
        f"   browse: {url}" + ("   (make ui)" if uri.startswith("sqlite") else "") + "\n"
        f"   outputs: {out_dir}"
        + (f"\n   attractors: {out_dir / 'attractors.png'}   (python -m src.attractors {run_id})"
           if cfg.vaa.pictures else "")
    )


def check_command_line(argv: list[str]) -> None:
    """The overrides' types against the schema (src/schema.py), before Hydra composes: a wrong
    type is refused in one line (Hydra's own report of it spans six)."""
    from src.schema import check_overrides

    try:
        check_overrides([a for a in argv if not a.startswith("-")])
    except ValueError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    check_command_line(sys.argv[1:])
    main()
