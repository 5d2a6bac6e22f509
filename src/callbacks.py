"""Hydra callbacks of the entry point, ``src.run``: the end of each job of a sweep, and quiet
SLURM status polls on clusters without accounting.

A module of its own: ``python -m src.run`` runs ``src/run.py`` as ``__main__``, and a callback
named ``src.run.X`` in the config would import a second copy of it, which the job never writes to.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

#: What the job that just ended in this process did: ``name``, ``reused``, ``seconds``,
#: ``metrics`` (written by ``src.run.main``, read and cleared by :class:`JobDone`).
OUTCOME: dict = {}


#: The file, in a sweep's directory, where :class:`JobDone` appends a line per finished job.
JOBS_DONE = "jobs-done.log"


class JobDone(Callback):
    """One line when a job of a sweep ends, ``job-done: NAME SECONDS s METRICS`` (or
    ``job-reused: NAME 0 s`` for a run found complete), appended to ``jobs-done.log`` in the
    sweep's directory: the job may be a joblib worker or a SLURM job on another node, and the
    sweep's directory is where all of them write. ``src.reproduce`` adds it to its sweeps
    (``+hydra.callbacks.job_done._target_=src.callbacks.JobDone``) and reads the lines as
    they come."""

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if OUTCOME.get("name"):
            what = "job-reused" if OUTCOME.get("reused") else "job-done"
            line = (f"{what}: {OUTCOME['name']} {OUTCOME.get('seconds', 0):.0f} s "
                    f"{OUTCOME.get('metrics', '')}")
            with open(Path(config.hydra.sweep.dir) / JOBS_DONE, "a") as f:
                f.write(line + "\n")  # one write of one short line: whole, even from two jobs
        OUTCOME.clear()


class NoSacct(logging.Filter):
    """Says once that SLURM's accounting is off, then drops submitit's warning of every status
    poll ("Bypassing sacct error ..."): without it, submitit reads the jobs' ends from their
    result files, which is all a sweep needs."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if not NoSacct.said:  # once, and not through submitit's two handlers and Hydra's
            NoSacct.said = True
            print("SLURM accounting (sacct) is off on this cluster: the sweep follows its jobs "
                  "through their result files", flush=True)
        return False


class QuietSlurm(Callback):
    """Before a sweep through the SLURM launcher, on a cluster whose ``sacct`` does not answer
    (no accounting database), install :class:`NoSacct` on submitit's logger."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if "Slurm" not in str(config.hydra.launcher.get("_target_", "")):
            return
        sacct = shutil.which("sacct")
        if sacct and subprocess.run([sacct, "-n", "-X", "-j", "1"], capture_output=True,
                                    timeout=30).returncode == 0:
            return
        logging.getLogger("submitit").addFilter(NoSacct())
