"""The paper's claims as figures and a table: every figure sweep, then the figures from MLflow.

    make reproduce                      # SCALE=cpu: about an hour on two CPU cores
    make reproduce SCALE=paper          # the paper's sizes, for a GPU
    python -m src.reproduce --scale smoke --tracking-uri sqlite:///tmp/m.db --out /tmp/figs

1. Each sweep of ``conf/figure/*.yaml`` runs through the normal entry point,
   ``python -m src.run -m +figure=F +scale=S mlflow.experiment=reproduce-S
   mlflow.skip_finished=true``: a run already completed with the same config is reused, so an
   interrupted reproduce resumes where it stopped. One line per job shows the progress.
2. ``src.figures`` builds every figure (PNG, PDF) and ``summary.md`` from the experiment's
   completed runs, reading the store only.
3. The figures and the table are logged as artifacts of the run ``reproduce-S`` (tag
   ``figure=summary``) of the same experiment, updated in place by later reproduces.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

JOB_START = re.compile(r"\[HYDRA\]\s+#(\d+) : ")
JOB_DONE = re.compile(r"^== (\S+) done in (\d+) s")
JOB_REUSED = re.compile(r"^reusing completed run (\S+)")
TEST_LINE = re.compile(r"^\s+(test/\S+ .*)$")


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def sweep_jobs(figure: str, scale: str) -> list[list[str]]:
    """The overrides of every job of the sweep ``+figure=F +scale=S``, expanded from its grid
    (``hydra.sweeper.params``) by Hydra's own basic sweeper, in launch order."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+figure={figure}", f"+scale={scale}"],
                      return_hydra_config=True)
    axes = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    return BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(axes), None)[0]


def job_count(figure: str, scale: str) -> int:
    return len(sweep_jobs(figure, scale))


def job_digests(figure: str, scale: str) -> list[str]:
    """The config digest (tag ``config_hash``, src/tracking.py) of every job of the sweep, as
    ``src/run.py`` computes it: the jobs already completed can be counted before launching."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src import tracking

    base = [f"+figure={figure}", f"+scale={scale}"]
    jobs = sweep_jobs(figure, scale)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        configs = [compose("config", overrides=base + job) for job in jobs]
    return [tracking.config_hash(OmegaConf.to_container(c, resolve=True)) for c in configs]


def completed_digests(uri: str, experiment: str) -> set[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return set()
    runs = client.search_runs([exp.experiment_id], filter_string="tags.completed = 'true'",
                              max_results=50000)
    return {r.data.tags.get("config_hash") for r in runs}


def quote(value: str) -> str:
    """A Hydra override value that may hold ``:``, ``/``, spaces."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Progress:
    """One line per job: ``[done/total] sweep k/n  run-name  done in 12 s  test/loss ...``."""

    def __init__(self, total: int):
        self.total, self.done, self.trained, self.trained_s = total, 0, 0, 0.0
        self.started = time.time()

    def eta(self) -> str:
        if not self.trained:
            return ""
        left = (self.total - self.done) * self.trained_s / self.trained
        return f"  (~{left / 60:.0f} min left)" if left >= 60 else ""

    def job(self, index: int, size: int, name: str, what: str, seconds: float = 0.0) -> None:
        self.done += 1
        if seconds:
            self.trained, self.trained_s = self.trained + 1, self.trained_s + seconds
        print(f"  [{self.done:>{len(str(self.total))}}/{self.total}] job {index + 1}/{size}  "
              f"{name:<28} {what}{self.eta()}", flush=True)


def run_sweep(figure: str, scale: str, uri: str, size: int, sweep_dir: Path, log: Path,
              progress: Progress, threads: int | None = None) -> int:
    """``python -m src.run -m +figure=F +scale=S ...``, its output to ``log``; the exit code."""
    cmd = [sys.executable, "-m", "src.run", "-m", f"+figure={figure}", f"+scale={scale}",
           f"mlflow.experiment=reproduce-{scale}", "mlflow.skip_finished=true",
           f"mlflow.tracking_uri={quote(uri)}", f"hydra.sweep.dir={quote(str(sweep_dir))}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log.parent.mkdir(parents=True, exist_ok=True)
    index, pending = 0, None  # pending: (name, seconds) of a finished job awaiting its test line
    with open(log, "w") as f, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True) as proc:
        f.write(" ".join(cmd) + "\n")
        for line in proc.stdout:
            f.write(line)
            if pending:  # a finished job: its test metrics are on the next line
                m = TEST_LINE.match(line)
                progress.job(index, size, pending[0], f"done in {pending[1]:.0f} s"
                             + (f"  {m.group(1)}" if m else ""), max(pending[1], 1e-9))
                pending = None
            if m := JOB_START.search(line):
                index = int(m.group(1))
            elif m := JOB_REUSED.match(line):
                progress.job(index, size, m.group(1), "reused")
            elif m := JOB_DONE.match(line):
                pending = (m.group(1), float(m.group(2)))
            elif line.startswith("error:"):
                print(f"  {line.rstrip()}", flush=True)
    return proc.returncode


def summary_run(uri: str, experiment: str, scale: str, files: list[Path], n_runs: int) -> str:
    """Log ``files`` as artifacts of the run ``reproduce-<scale>`` (created once, then updated)."""
    from mlflow.tracking import MlflowClient

    from src import tracking

    client = MlflowClient(uri)
    exp_id = tracking.prepare_store(uri, experiment)
    found = client.search_runs([exp_id], filter_string="tags.figure = 'summary'", max_results=1)
    if found:
        run_id = found[0].info.run_id
    else:
        run_id = client.create_run(exp_id, run_name=f"reproduce-{scale}",
                                   tags={"figure": "summary", "scale": scale}).info.run_id
    client.set_tag(run_id, "git_sha", tracking.git_sha())
    client.log_metric(run_id, "runs", n_runs)
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="cpu", help="a name in conf/scale/ (cpu, paper, smoke)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: the embedded store outputs/mlflow.db)")
    p.add_argument("--out", type=Path, default=None,
                   help="where the figures go (default: outputs/figures/<scale>)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="sweep directories and logs (default: outputs/reproduce/<scale>)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per job (OMP_NUM_THREADS); 1 is fastest for tiny sizes "
                        "on a busy machine (default: torch's choice)")
    p.add_argument("--figures-only", action="store_true",
                   help="skip the sweeps: rebuild the figures from the runs already in the store")
    p.add_argument("--plan", action="store_true",
                   help="print the sweeps, their job counts and how many are complete; run nothing")
    args = p.parse_args(argv)
    scales = names("scale")
    if args.scale not in scales:
        print(f"error: SCALE={args.scale} is not one of {', '.join(scales)} (conf/scale/*.yaml)",
              file=sys.stderr)
        return 2

    import logging

    import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)

    from src import tracking

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    scale = args.scale
    uri = tracking.resolve_uri(args.tracking_uri, ROOT)
    experiment = f"reproduce-{scale}"
    out = (args.out or ROOT / "outputs" / "figures" / scale).resolve()
    work = (args.work_dir or ROOT / "outputs" / "reproduce" / scale).resolve()
    figures = names("figure")
    started = time.time()
    if not args.figures_only:
        done = completed_digests(uri, experiment)
        jobs = {f: job_digests(f, scale) for f in figures}
        complete = {f: sum(d in done for d in digests) for f, digests in jobs.items()}
        total = sum(len(d) for d in jobs.values())
        print(f"reproduce, scale {scale}: {len(figures)} sweeps, {total} jobs, "
              f"{sum(complete.values())} already complete; runs in experiment '{experiment}' "
              f"at {uri}", flush=True)
        if args.plan:
            for f in figures:
                print(f"  {f}: {len(jobs[f])} jobs, {complete[f]} complete")
            return 0
        tracking.prepare_store(uri, experiment)
        progress = Progress(total)
        for k, figure in enumerate(figures, 1):
            size, log = len(jobs[figure]), work / "logs" / f"{figure}.log"
            if complete[figure] == size:
                progress.done += size
                print(f"[sweep {k}/{len(figures)}] {figure}: all {size} jobs complete, reused",
                      flush=True)
                continue
            print(f"[sweep {k}/{len(figures)}] {figure}: {size} jobs, {complete[figure]} complete "
                  f"(log: {log})", flush=True)
            rc = run_sweep(figure, scale, uri, size, work / "sweeps" / figure, log, progress,
                           args.threads)
            if rc != 0:
                tail = log.read_text().splitlines()[-25:]
                print("\n".join(tail), file=sys.stderr)
                print(f"error: sweep {figure} failed (exit {rc}; log {log}); run the same command "
                      f"again to resume: completed runs are reused", file=sys.stderr)
                return 1

    from src.figures import make_all
    from src.figures.common import load_runs

    print(f"figures from experiment '{experiment}' -> {out}", flush=True)
    runs = load_runs(uri, experiment)
    if not runs:
        print(f"error: no completed runs in experiment '{experiment}' at {uri}", file=sys.stderr)
        return 1
    files = make_all(runs, out, f"experiment `{experiment}`")
    run_id = summary_run(uri, experiment, scale, files, len(runs))
    print(f"\n== reproduce ({scale}) done in {(time.time() - started) / 60:.1f} min\n"
          f"   figures: {', '.join(p.name for p in files if p.suffix == '.png')} in {out}\n"
          f"   table:   {out / 'summary.md'}\n"
          f"   mlflow:  run reproduce-{scale} ({run_id}) in experiment '{experiment}' at {uri}"
          f"\n   browse:  make ui")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume (completed runs are reused)",
              file=sys.stderr)
        sys.exit(130)
