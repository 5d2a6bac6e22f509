"""One run of the method: check, build, warm up, train, test, report.

    python -m src.run cell=gru warmup=partial
    python -m src.run -m cell=gru,lstm warmup=none,partial seed=0,1,2

Everything a run does is logged to one MLflow run (both stages): the resolved config as
params, the choices as tags, the metrics of docs/usage.md, the resolved config, the best
checkpoint, the stages' weights and the picture of attractors as artifacts. The config's
types and ranges are the schema's (``src/schema.py``), checked before torch, Lightning or
MLflow are imported, so that a bad value is refused at once; the run's life in the store is
``src/tracking.py``'s ``Job``; the work is ``src/pipeline.py``. These modules read the Hydra
config; everything below them takes plain Python arguments.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

# callbacks by module: a SLURM job gets main pickled by value, and a global would be a copy
from src import callbacks, schema, tracking
from src.rules import Refusal, one_line

CONF = Path(__file__).resolve().parents[1] / "conf"  # absolute: found however main is called
schema.register()  # the config's types (conf/config.yaml's defaults list names `schema`)



def full_error() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``); ``__main__`` sets
    the variable for Hydra itself (and the sweep's jobs), marking that it did."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and "WARMUP_SET_FULL_ERROR" not in os.environ


@contextmanager
def exits(out_dir: Path):
    """Errors as exit codes and one line on stderr: bad input (a :class:`Refusal`, an
    unreachable server, a config Hydra cannot compose) exits 2 and leaves no run directory;
    a diverged stage exits 1 (its run is FAILED in the store). Anything else is a bug: its
    traceback is shown."""
    try:
        yield
    except (Refusal, ConnectionError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        if out_dir.exists() and not (out_dir / "checkpoints").exists():
            shutil.rmtree(out_dir, ignore_errors=True)
            remove_empty_parents(out_dir)
        sys.exit(2)
    except FloatingPointError as err:
        if full_error():
            raise
        print(f"error: {one_line(err)} (HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
        sys.exit(1)


def remove_empty_parents(folder: Path) -> None:
    """The folders Hydra made for a refused run's folder (``outputs/runs/<date>``), where they
    are left empty, up to the working directory."""
    top = Path.cwd().resolve()
    for parent in folder.resolve().parents:
        if parent == top or top not in parent.parents:
            return
        try:
            parent.rmdir()  # only an empty folder
        except OSError:
            return


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


def job_of(cfg: DictConfig) -> tracking.Job:
    """The run's job in the store (src/tracking.py), after the checks that need no torch: the
    ranges of the schema, and a store that can be written to."""
    schema.check(cfg)
    uri = tracking.resolve_uri(cfg.mlflow.tracking_uri, Path.cwd())
    tracking.check_reachable(uri)
    return tracking.Job(uri, cfg.mlflow.experiment, OmegaConf.to_container(cfg, resolve=True),
                        run_name(cfg), Path.cwd())


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> float:
    """The method: check, build, warm up, train, test, report (docs/method.md)."""
    out_dir, started = Path(HydraConfig.get().runtime.output_dir), time.time()
    with exits(out_dir):
        job = job_of(cfg)
        done = job.completed() if cfg.mlflow.skip_finished else None
        if done is not None:  # the same config finished before: nothing is built
            return report_reused(job, done)
        from src import pipeline  # torch and Lightning: after the checks

        dm, net, inputs = pipeline.build(cfg)
        meter = pipeline.vaa_meter(cfg, inputs)
        with job.run(pipeline.run_tags(cfg, job.digest), [save_config(cfg, out_dir)],
                     resumable=dm.task != "rl"):  # the T-Maze keeps no checkpoints to resume
            logger = pipeline.RunLogger(tracking_uri=job.uri, run_id=job.run_id)
            pipeline.log_data(dm)
            result = pipeline.train(cfg, dm, net, meter, logger, out_dir, job.folder,
                                    job.logged_until)
            pipeline.log_run_files(cfg, job.name, net, result, meter, out_dir)
        report(job, cfg, result, time.time() - started, out_dir)
    # what a Hydra sweeper minimises: the test loss, or for the T-Maze the episodes to solve it
    return float(result["test/loss"] if "test/loss" in result else result["episodes_to_solve"])


def save_config(cfg: DictConfig, out_dir: Path) -> Path:
    path = out_dir / "config.yaml"
    OmegaConf.save(cfg, path, resolve=True)
    return path


def report_reused(job: tracking.Job, done) -> float:
    print(f"reusing completed run {job.name} ({done.info.run_id}) from {job.uri}")
    callbacks.OUTCOME.update(name=job.name, reused=True)
    return float(done.data.metrics.get("test/loss", float("nan")))


def report(job: tracking.Job, cfg: DictConfig, result: dict, seconds: float,
           out_dir: Path) -> None:
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("test/"))
    callbacks.OUTCOME.update(name=job.name, seconds=seconds, metrics=metrics)
    print_summary(job.name, job.run_id, job.uri, cfg, result, seconds, out_dir,
                  tracking.ui_url(job.uri, job.experiment_id, job.run_id))


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


def cli() -> None:
    """``python -m src.run``. Hydra prints its own errors (a key the schema lacks, a wrong
    type, an unknown choice) over several lines and exits 1; with ``HYDRA_FULL_ERROR`` set it
    raises them instead, and they are said here in one line, exit status 2."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    saved = dict(os.environ)
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        os.environ.update(HYDRA_FULL_ERROR="1", WARMUP_SET_FULL_ERROR="1")
    try:
        main()
    except (HydraException, OmegaConfBaseException) as err:
        if full_error():
            raise
        cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
        said = schema.type_error(cause) if cause is not err else one_line(err)
        print(f"error: {said.split(' Config search path:')[0]}", file=sys.stderr)
        sys.exit(2)
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    cli()
