"""The paper's claims as figures and a table: every figure sweep, then the figures from MLflow.

    make reproduce                      # SCALE=cpu: about an hour on two CPU cores
    make reproduce SCALE=medium         # where denoising and digits decide: about 2 hours
    make reproduce SCALE=paper          # the paper's sizes, for a GPU
    python -m src.reproduce --scale smoke --tracking-uri sqlite:///tmp/m.db --out /tmp/figs

1. Each sweep of ``conf/figure/*.yaml`` runs through the normal entry point,
   ``python -m src.run -m +figure=F +scale=S mlflow.experiment=reproduce-S
   mlflow.skip_finished=true``, with Hydra's joblib launcher running ``--jobs`` (2) jobs of
   ``--threads`` (1) torch thread at once: a run already completed with the same config is
   reused, so an interrupted reproduce resumes where it stopped. One line per finished job,
   which a Hydra callback of the jobs announces (``src.callbacks.JobDone``); ``--plan`` prints the
   job counts and an estimate, and runs nothing.
2. ``src.figures`` builds every figure (PNG, PDF) and ``summary.md`` from the experiment's
   completed runs, reading the store only.
3. The figures and the table are logged as artifacts of the run ``reproduce-S`` (tag
   ``figure=summary``) of the same experiment, updated in place by later reproduces.

``summary.md`` ends with the paper's claims decided from the runs (src/figures/claims.py), with
the machines the runs came from; ``--check`` compares those verdicts with the reference ones
committed in ``docs/results/S/verdicts.json``: numbers differ between CPUs in their last
digits, and a verdict is a statistical decision whose chance to be contradicted on another
machine is small and stated (src/figures/inference.py); a contradiction fails the check, a
verdict decided on one machine and undecided on the other is reported. ``--publish`` (``make results``) copies the table, the
verdicts and the PNG figures into ``docs/results/S/``, the reference and the pages the docs show.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: ``--plan``'s seconds a job before any job of a sweep is in the store, per scale: one number
#: (a typical job of the scale) or one per sweep. Jobs run 2 at once, 1 thread each, on the
#: 2-core AMD EPYC the docs' results come from. cpu: the full cpu reproduce of commit 2ce304d
#: (2026-12-08; 400 jobs, 50.8 min), each sweep's wall time over its jobs, times the 2 jobs run
#: at once; smoke: 44 jobs in about 65 s (2026-11-30);
#: medium: the full medium reproduce of commits 87d06c9-9c6f3f6 (2026-12-06/07; 107.2 min
#: wall), each sweep's wall time over its jobs, times the 2 jobs run at once. Kept here, not in
#: conf/scale/, so that it never enters a run's config (and its digest).
JOB_SECONDS: dict[str, float | dict[str, float]] = {
    "cpu": {"memory_horizon": 4.3, "multistability_curves": 5.9, "precision": 18.7,
            "precision_excite": 45.3, "tmaze": 43.5},
    "smoke": 1.5,
    "medium": {"memory_horizon": 5.6, "multistability_curves": 5.8, "precision": 113.6,
               "precision_excite": 174.9, "tmaze": 23.8},
}


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def sweep_axes(figure: str, scale: str) -> list[list[str]]:
    """The grid of the sweep ``+figure=F +scale=S`` (``hydra.sweeper.params``), one list of
    ``key=value`` overrides per axis. The figures' grids are plain comma lists (``cell:
    gru,lstm``, interpolations of a scale's sizes included), which Hydra's basic sweeper
    expands the same way; its other sweep syntax (``range()``, ``choice()``) is refused here,
    where the jobs are counted and their digests computed."""
    from hydra import compose, initialize_config_dir

    from src import schema

    schema.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+figure={figure}", f"+scale={scale}"],
                      return_hydra_config=True)
    axes = []
    for key, value in cfg.hydra.sweeper.params.items():
        text = str(value)
        if any(c in text for c in "()[]{}'\""):
            raise ValueError(f"conf/figure/{figure}.yaml: {key}: {text}: a figure's grid is a "
                             "plain comma list of values")
        axes.append([f"{key}={v.strip()}" for v in text.split(",")])
    return axes


def sweep_jobs(figure: str, scale: str) -> list[list[str]]:
    """The overrides of every job of the sweep, in the order Hydra's basic sweeper launches
    them (the product of the axes, the last varying fastest)."""
    return [list(job) for job in itertools.product(*sweep_axes(figure, scale))]


def job_digests(figure: str, scale: str) -> list[str]:
    """The config digest (tag ``config_hash``, src/tracking.py) of every job of the sweep, as
    ``src/run.py`` computes it: the jobs already completed can be counted before launching."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src import schema, tracking

    schema.register()
    base = [f"+figure={figure}", f"+scale={scale}"]
    jobs = sweep_jobs(figure, scale)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        configs = [compose("config", overrides=base + job) for job in jobs]
    return [tracking.config_hash(OmegaConf.to_container(c, resolve=True)) for c in configs]


def completed_runs(uri: str, experiment: str, figure: str | None = None) -> list:
    """The completed runs of ``experiment`` (of one sweep, given ``figure``); the store and
    the experiment are not created when missing."""
    from src import tracking

    where = "tags.completed = 'true'" + (f" and tags.figure = '{figure}'" if figure else "")
    return tracking.search_existing(uri, experiment, where, 50000)[1]


def completed_digests(uri: str, experiment: str) -> set[str]:
    return {r.data.tags.get("config_hash") for r in completed_runs(uri, experiment)}


def quote(value: str) -> str:
    """A Hydra override value that may hold ``:``, ``/``, spaces."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Progress:
    """One line per finished job, ``[done/total] sweep-name  run-name  12 s  test/loss ...``,
    with an estimate of the time left. The jobs say when they end: Hydra calls
    ``src.callbacks.JobDone`` at the end of each, which prints ``job-done: NAME SECONDS s
    METRICS`` (or ``job-reused: NAME`` for a run found complete).

    ``plan``: per sweep, the jobs left and their estimated wall seconds at the jobs run at
    once (:func:`sweep_plan`, what ``--plan`` prints). The time left is the plan of the jobs
    not yet finished, times how the plan has fared so far (wall time over planned time of the
    finished jobs, shrunk towards 1 over the first minutes so that one slow start does not
    double it). Without a plan for every sweep left, it is the mean wall time of the jobs
    finished so far times the jobs left, which misjudges sweeps of unequal jobs."""

    SHRINK_S = 300.0  # seconds of wall and of plan added to both sides of the ratio

    def __init__(self, total: int, done: int,
                 plan: dict[str, tuple[int, float | None]] | None = None):
        self.total, self.done = total, done
        self.started, self.trained = time.time(), 0
        self.left = {f: n for f, (n, _) in (plan or {}).items()}
        self.each = {f: (s / n if s is not None and n else None)
                     for f, (n, s) in (plan or {}).items()}
        self.planned_done = 0.0

    def left_seconds(self) -> float | None:
        elapsed = time.time() - self.started
        planned = [(n, self.each.get(f)) for f, n in self.left.items() if n]
        if self.left and all(each is not None for _, each in planned):
            ratio = (elapsed + self.SHRINK_S) / (self.planned_done + self.SHRINK_S)
            return ratio * sum(n * each for n, each in planned)
        if not self.trained:
            return None
        return (self.total - self.done) * elapsed / self.trained

    def eta(self) -> str:
        left = self.left_seconds()
        return f"  (~{left / 60:.0f} min left)" if left is not None and left >= 60 else ""

    def line(self, figure: str, text: str) -> None:
        """Count and print the job that ``text`` (a line of the sweep's output) says ended."""
        if not text.startswith("job-done: "):
            return
        name, seconds, _, metrics = (text[len("job-done: "):].rstrip("\n").split(" ", 3)
                                     + ["", "", ""])[:4]
        self.done, self.trained = self.done + 1, self.trained + 1
        if self.left.get(figure):
            self.left[figure] -= 1
            self.planned_done += self.each[figure] or 0.0
        print(f"  [{self.done:>{len(str(self.total))}}/{self.total}] {figure}  "
              f"{name:<28} {float(seconds or 0):4.0f} s  {metrics}{self.eta()}", flush=True)


def sweep_command(figure: str, scale: str, uri: str, sweep_dir: Path, jobs: int,
                  launcher: str | None = None, extra: list[str] = ()) -> list[str]:
    """``python -m src.run -m +figure=F +scale=S ...``; ``jobs`` > 1: Hydra's joblib launcher
    runs that many jobs at once (processes of its own, one store); ``launcher``: a launcher of
    conf/hydra/launcher/ instead (``slurm_cpu``: each job a SLURM job); ``extra``: overrides
    added to every sweep (``hydra.launcher.partition=debug``)."""
    cmd = [sys.executable, "-m", "src.run", "-m", f"+figure={figure}", f"+scale={scale}",
           f"mlflow.experiment=reproduce-{scale}", "mlflow.skip_finished=true",
           "+hydra.callbacks.job_done._target_=src.callbacks.JobDone",
           f"mlflow.tracking_uri={quote(uri)}", f"hydra.sweep.dir={quote(str(sweep_dir))}"]
    if launcher:
        cmd += [f"hydra/launcher={launcher}"]
    elif jobs > 1:
        cmd += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    return cmd + list(extra)


def run_sweep(figure: str, scale: str, uri: str, sweep_dir: Path, log: Path,
              progress: Progress, threads: int | None = None, jobs: int = 1,
              launcher: str | None = None, extra: list[str] = ()) -> int:
    """Run one sweep, its output to ``log``; a progress line as each job ends (the jobs append
    them to ``jobs-done.log`` in the sweep's directory, src/callbacks.py); the exit code."""
    from src.callbacks import JOBS_DONE

    cmd = sweep_command(figure, scale, uri, sweep_dir, jobs, launcher, extra)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads:  # inherited by the joblib workers and SLURM jobs too
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log.parent.mkdir(parents=True, exist_ok=True)
    done_file, seen = sweep_dir / JOBS_DONE, 0
    done_file.unlink(missing_ok=True)

    def report() -> None:
        nonlocal seen
        if done_file.exists():
            lines = done_file.read_text().splitlines(keepends=True)
            for text in lines[seen:]:
                if text.endswith("\n"):  # a line being written is read next time
                    progress.line(figure, text)
                    seen += 1

    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                report()
        finally:
            if proc.poll() is None:  # interrupted: stop the sweep too
                proc.terminate()
                proc.wait()
    report()
    for line in log.read_text().splitlines():
        if line.startswith("error:"):
            print(f"  {line}", flush=True)
    return proc.returncode


def job_key(job: list[str]) -> dict[str, str]:
    """The benchmark and cell a job's overrides name (``+figure/benchmark=denoising``,
    ``cell=gru``): what its time depends on most, for ``--plan``."""
    named = dict(o.split("=", 1) for o in job)
    return {tag: named[key] for tag, key in (("benchmark", "+figure/benchmark"), ("cell", "cell"))
            if key in named}


def plan_seconds(jobs: list[list[str]], finished: list[tuple[dict, float]],
                 hint: float | None) -> tuple[float | None, str]:
    """The seconds the ``jobs`` left of a sweep take one after another, and how they were
    estimated. A job counts the mean time of the finished jobs of its sweep with its benchmark
    and cell (``finished``: each one's tags and seconds), else of all the sweep's finished
    jobs, else ``hint``; ``None`` when there is nothing to go on."""
    if not jobs:
        return 0.0, ""
    if not finished and hint is None:
        return None, "no estimate"
    total = 0.0
    for job in jobs:
        key = job_key(job)
        same = [t for tags, t in finished if all(tags.get(k) == v for k, v in key.items())]
        pool = same or [t for _, t in finished]
        total += sum(pool) / len(pool) if pool else hint
    where = (f"from {len(finished)} finished, by benchmark and cell" if finished
             else "the scale's measured mean")
    return total, where


def sweep_plan(uri: str, experiment: str, scale: str, jobs: dict[str, list[str]],
               done: set[str], parallel: int) -> dict[str, tuple[int, float | None, str]]:
    """Per sweep: the jobs left, their wall seconds at ``parallel`` jobs at once
    (:func:`plan_seconds`; ``None``: no estimate) and how they were estimated."""
    hints = JOB_SECONDS.get(scale)
    plan = {}
    for f, digests in jobs.items():
        left = [job for job, d in zip(sweep_jobs(f, scale), digests) if d not in done]
        finished = [(r.data.tags, ((r.info.end_time or r.info.start_time) - r.info.start_time)
                     / 1000) for r in completed_runs(uri, experiment, f)]
        hint = hints.get(f) if isinstance(hints, dict) else hints
        seconds, where = plan_seconds(left, finished, hint)
        plan[f] = (len(left), None if seconds is None else seconds / parallel, where)
    return plan


def print_plan(jobs: dict[str, list[str]], plan: dict[str, tuple[int, float | None, str]],
               parallel: int) -> None:
    """Per sweep: jobs, complete, and the time left (:func:`sweep_plan`)."""
    total_s, unknown = 0.0, []
    for f, digests in jobs.items():
        left, seconds, where = plan[f]
        if seconds is None:
            unknown.append(f)
        else:
            total_s += seconds
        print(f"  {f}: {len(digests)} jobs, {len(digests) - left} complete, {left} to run"
              + (f", ~{seconds / 60:.0f} min ({seconds * parallel / left:.0f} s a job, "
                 f"{where}, {parallel} at once)" if seconds and left else ""))
    print(f"estimate: ~{total_s / 60:.0f} min of sweeps at {parallel} jobs at once, plus about a "
          "minute of figures" + (f"; no estimate for {', '.join(unknown)}" if unknown else ""))


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


def published(scale: str) -> Path:
    """Where ``--publish`` puts a scale's results in the docs."""
    return ROOT / "docs" / "results" / scale


def reference(scale: str) -> Path:
    """The committed reference verdicts of a scale."""
    return published(scale) / "verdicts.json"


def publish(files: list[Path], scale: str, experiment: str, runs: list) -> Path:
    """Copy ``summary.md`` (under a generated header), ``verdicts.json`` and the PNG figures
    into :func:`published` ``(scale)``; what was there before is replaced."""
    import datetime
    import shutil

    from src.figures.summary import machines

    dest = published(scale)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in files:
        if path.name == "summary.md":
            header = (f"> Generated by `make results SCALE={scale}` (`python -m src.reproduce "
                      f"--scale {scale} --figures-only --publish`) from the {len(runs)} completed "
                      f"runs of experiment `{experiment}`, {datetime.date.today().isoformat()}; "
                      f"runs made on: {machines(runs)}. Regenerate it with that command; do not "
                      "edit by hand.\n\n")
            (dest / path.name).write_text(header + path.read_text())
        elif path.suffix == ".png" or path.name == "verdicts.json":
            shutil.copy2(path, dest / path.name)
    return dest


def check(uri: str, experiment: str, scale: str) -> int:
    """This store's verdicts against the reference: one line per claim and subject, each
    agreeing, contradicting (shown against not shown), differing in certainty (decided on one
    machine, undecided on the other), missing here or new; 1 on a contradiction or a reference
    verdict with no runs here, else 0 (differences in certainty are what two fresh draws of
    seeds give at the rules' level, and are reported, not failed)."""
    from src.figures import claims
    from src.figures.store import load_runs
    from src.figures.summary import machines

    path = reference(scale)
    if not path.is_file():
        found = sorted(p.parent.name for p in path.parent.parent.glob("*/verdicts.json"))
        print(f"error: no reference verdicts for scale {scale} ({path}); scales with a "
              f"reference: {', '.join(found) or 'none'}", file=sys.stderr)
        return 2
    runs = load_runs(uri, experiment)
    if not runs:
        print(f"error: no completed runs in experiment '{experiment}' at {uri}: run "
              f"`make reproduce SCALE={scale}` first", file=sys.stderr)
        return 2
    ref_machines, ref = claims.read(path)
    c = claims.compare(claims.decide(runs), ref)
    print(f"claims of scale {scale}, decided here and in the reference\n"
          f"  here:      {machines(runs)}\n  reference: {ref_machines}")
    print("\n".join(c.lines))
    n = c.counts
    print(f"{n[claims.AGREE]} agree, {n[claims.CONTRADICTION]} contradict (shown on one machine, "
          f"not shown on the other), {n[claims.CERTAINTY]} differ in certainty (decided on one, "
          f"undecided on the other), {n[claims.MISSING]} not decided here, {n[claims.NEW]} new; "
          f"of {len(ref)} reference verdicts")
    print(f"under the rules, at the effects both machines' runs estimate together, two fresh "
          f"draws would give about {c.expected_contradictions:.2f} contradictions and "
          f"{c.expected_certainty:.1f} differences in certainty; no verdict contradicts with a "
          f"chance above {c.worst:.1%}, whatever its true effect (docs/results.md)")
    if n[claims.CONTRADICTION]:
        print("error: contradictions: a verdict shown on one machine and not shown on the "
              "other", file=sys.stderr)
        return 1
    if n[claims.MISSING]:
        print(f"error: {n[claims.MISSING]} reference verdicts have no runs here: run `make "
              f"reproduce SCALE={scale}` to the end", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="cpu", help="a name in conf/scale/ (cpu, medium, paper, smoke)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: the embedded store outputs/mlflow.db)")
    p.add_argument("--out", type=Path, default=None,
                   help="where the figures go (default: outputs/figures/<scale>)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="sweep directories and logs (default: outputs/reproduce/<scale>)")
    p.add_argument("--jobs", type=int, default=2,
                   help="jobs run at once by Hydra's joblib launcher (default 2, one per core "
                        "of a 2-core machine; 1: one after another, no worker processes)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per job (OMP_NUM_THREADS; default: 1 when jobs run in "
                        "parallel, else torch's choice)")
    p.add_argument("--launcher", default=None,
                   help="a Hydra launcher of conf/hydra/launcher/ for the sweeps' jobs instead of "
                        "joblib (slurm_cpu: each job a SLURM job; --jobs is then ignored)")
    p.add_argument("--sweep-arg", action="append", default=[], metavar="OVERRIDE",
                   help="a Hydra override added to every sweep (repeatable), e.g. "
                        "hydra.launcher.partition=debug")
    p.add_argument("--figures-only", action="store_true",
                   help="skip the sweeps: rebuild the figures from the runs already in the store")
    p.add_argument("--plan", action="store_true",
                   help="print the sweeps, their job counts and how many are complete; run nothing")
    p.add_argument("--check", action="store_true",
                   help="compare the claims' verdicts of the runs in the store with the "
                        "committed reference (docs/results/SCALE/verdicts.json); run nothing")
    p.add_argument("--publish", action="store_true",
                   help="also copy summary.md, verdicts.json and the PNG figures into "
                        "docs/results/SCALE/ (make results)")
    args = p.parse_args(argv)
    launchers = names("hydra/launcher")
    if args.launcher is not None and args.launcher not in launchers:
        print(f"error: --launcher {args.launcher} is not one of {', '.join(launchers)} "
              "(conf/hydra/launcher/*.yaml)", file=sys.stderr)
        return 2
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        print(f"error: --jobs {args.jobs} and --threads {args.threads} must be >= 1",
              file=sys.stderr)
        return 2
    threads = args.threads or (1 if args.jobs > 1 or args.launcher else None)
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
    if args.check:
        return check(uri, experiment, scale)
    if not args.figures_only:
        done = completed_digests(uri, experiment)
        jobs = {f: job_digests(f, scale) for f in figures}
        complete = {f: sum(d in done for d in digests) for f, digests in jobs.items()}
        total = sum(len(d) for d in jobs.values())
        print(f"reproduce, scale {scale}: {len(figures)} sweeps, {total} jobs, "
              f"{sum(complete.values())} already complete; runs in experiment '{experiment}' "
              f"at {uri}", flush=True)
        plan = sweep_plan(uri, experiment, scale, jobs, done, args.jobs)
        if args.plan:
            print_plan(jobs, plan, args.jobs)
            return 0
        tracking.prepare_store(uri, experiment)
        progress = Progress(total, sum(complete.values()),
                            {f: (n, s) for f, (n, s, _) in plan.items()})
        for k, figure in enumerate(figures, 1):
            size, log = len(jobs[figure]), work / "logs" / f"{figure}.log"
            if complete[figure] == size:
                print(f"[sweep {k}/{len(figures)}] {figure}: all {size} jobs complete, reused",
                      flush=True)
                continue
            print(f"[sweep {k}/{len(figures)}] {figure}: {size} jobs, {complete[figure]} complete "
                  f"(log: {log})", flush=True)
            rc = run_sweep(figure, scale, uri, work / "sweeps" / figure, log, progress, threads,
                           args.jobs, args.launcher, args.sweep_arg)
            if rc != 0:
                tail = log.read_text().splitlines()[-25:]
                print("\n".join(tail), file=sys.stderr)
                print(f"error: sweep {figure} failed (exit {rc}; log {log}); run the same command "
                      f"again to resume: completed runs are reused", file=sys.stderr)
                return 1

    from src.figures import make_all
    from src.figures.store import load_runs

    print(f"figures from experiment '{experiment}' -> {out}", flush=True)
    runs = load_runs(uri, experiment)
    if not runs:
        print(f"error: no completed runs in experiment '{experiment}' at {uri}", file=sys.stderr)
        return 1
    files = make_all(runs, out, f"experiment `{experiment}`")
    run_id = summary_run(uri, experiment, scale, files, len(runs))
    if args.publish:
        print(f"published to {publish(files, scale, experiment, runs)}", flush=True)
    exp_id = tracking.prepare_store(uri, experiment)
    print(f"\n== reproduce ({scale}) done in {(time.time() - started) / 60:.1f} min\n"
          f"   figures: {', '.join(p.name for p in files if p.suffix == '.png')} in {out}\n"
          f"   table:   {out / 'summary.md'} (the claims' verdicts at its end; compare them "
          f"with the reference: python -m src.reproduce --check --scale {scale})\n"
          f"   mlflow:  run reproduce-{scale} ({run_id}) in experiment '{experiment}' at {uri}"
          f"\n   browse:  {tracking.ui_url(uri, exp_id)}"
          + ("   (make ui)" if uri.startswith("sqlite") else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume (completed runs are reused)",
              file=sys.stderr)
        sys.exit(130)
