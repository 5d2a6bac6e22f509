"""Hydra callbacks of the entry point, ``src.run``.

A module of its own: ``python -m src.run`` runs ``src/run.py`` as ``__main__``, and a callback
named ``src.run.X`` in the config would import a second copy of it, which the job never writes to.
"""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

#: What the job that just ended in this process did: ``name``, ``reused``, ``seconds``,
#: ``metrics`` (written by ``src.run.main``, read and cleared by :class:`JobDone`).
OUTCOME: dict = {}


class JobDone(Callback):
    """One line when a job of a sweep ends: ``job-done: NAME SECONDS s METRICS``, or
    ``job-reused: NAME`` for a run found complete. ``src.reproduce`` adds it to its sweeps
    (``+hydra.callbacks.job_done._target_=src.callbacks.JobDone``) and counts the lines as
    they come; a job's process may be a joblib worker or a SLURM job."""

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if OUTCOME.get("name"):
            what = "job-reused" if OUTCOME.get("reused") else "job-done"
            print(f"{what}: {OUTCOME['name']} {OUTCOME.get('seconds', 0):.0f} s "
                  f"{OUTCOME.get('metrics', '')}", flush=True)
        OUTCOME.clear()
