"""Beyond one machine: sweeps as SLURM jobs on a one-node cluster, logging to an MLflow server.

Marked ``cluster``: ``make test-cluster`` runs them (``.ci/run`` after the suite), not ``make
test``. The fixtures start what they need and stop it at the end: munge (when not running), a
SLURM controller and node daemon on a configuration of their own (``SLURM_CONF``, ports chosen
here, nothing written under /etc), and an ``mlflow server`` on loopback, its artifacts served
through it. Without the packages (``apt-get install slurm-wlm munge``, which ``.ci/run`` does)
or without root, every test here is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, answers, free_port, stop, tiny, wait_for

pytestmark = pytest.mark.cluster

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "starting SLURM's daemons needs root"
    absent = [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    if absent:
        return (f"no {', '.join(absent)}: apt-get install slurm-wlm munge (.ci/run does) to run "
                "the cluster tests")
    return None


def binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node SLURM cluster of 2 CPUs: the environment to submit to (``SLURM_CONF``)."""
    why = missing()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.mktemp("slurm")
    started = []
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
        subprocess.run(["runuser", "-u", "munge", "--", binary("munged"), "--num-threads=10"],
                       check=True)
        started.append("munged")
    host = socket.gethostname()
    conf = base / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=warmup-test", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "ReturnToService=2",
        f"StateSaveLocation={base}/state", f"SlurmdSpoolDir={base}/spool",
        f"SlurmctldPidFile={base}/slurmctld.pid", f"SlurmdPidFile={base}/slurmd.pid",
        f"SlurmctldLogFile={base}/slurmctld.log", f"SlurmdLogFile={base}/slurmd.log",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "MinJobAge=3600",  # finished jobs stay listed (squeue --states=all) for the checks
        "KillWait=2",      # scancel: SIGKILL 2 s after SIGTERM (submitit ignores SIGTERM)
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        f"NodeName={host} CPUs=2 RealMemory=4000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    (base / "state").mkdir()
    (base / "spool").mkdir()
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for daemon in ("slurmctld", "slurmd"):
        subprocess.run([binary(daemon)], env=env, check=True)
        started.append(daemon)
    wait_for(lambda: " idle " in subprocess.run(["sinfo", "-h"], env=env, capture_output=True,
                                                text=True).stdout + " ", 60, "the SLURM node")
    yield env
    subprocess.run(["scancel", "--user=root"], env=env, capture_output=True)
    for daemon in ("slurmd", "slurmctld"):
        pid = base / f"{daemon}.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGTERM)
    if "munged" in started:
        subprocess.run(["pkill", "-x", "munged"])
    wait_for(lambda: subprocess.run(["pgrep", "-x", "slurmctld|slurmd"],
                                    capture_output=True).returncode != 0, 30, "SLURM's end")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An MLflow tracking server on loopback, its store and artifacts in a temporary folder:
    ``(uri, client)``."""
    from mlflow.tracking import MlflowClient

    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", f"sqlite:///{base / 'db.sqlite'}",
         "--artifacts-destination", str(base / "artifacts"), "--workers", "1"],
        stdout=open(base / "server.log", "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(uri), 120, "the MLflow server")
    yield uri, MlflowClient(uri)
    stop(proc)


@pytest.fixture
def sweep(cluster):
    """``sweep(args, cwd)``: ``python -m src.run -m hydra/launcher=slurm_cpu ARGS``, started
    (not waited for); every sweep started is stopped when the test ends, passed or failed."""
    started = []

    def start(args: list[str], cwd: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "src.run", "-m", "hydra/launcher=slurm_cpu",
               "hydra.launcher.partition=debug", "trainer.threads=1", *args]
        started.append(subprocess.Popen(
            cmd, cwd=cwd, env={**cluster, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True))
        return started[-1]

    yield start
    for proc in started:
        stop(proc)
    subprocess.run(["scancel", "--user=root"], env=cluster, capture_output=True)


def slurm_state(job: str, env: dict) -> str:
    """``ARRAY_TASK STATE NODE`` of a job, as SLURM lists it (finished ones too)."""
    return subprocess.run(["squeue", "-h", "--states=all", "-j", job, "-o", "%i %T %N"],
                          env=env, capture_output=True, text=True).stdout.strip()


def runs_of(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def test_a_sweep_runs_as_slurm_jobs_into_the_server(cluster, server, sweep, tmp_path):
    """Two jobs, each a SLURM job (SLURM lists them COMPLETED), both runs FINISHED in the
    server with their metrics and artifacts; the polls of a cluster without accounting are
    one line, not one each."""
    uri, client = server
    proc = sweep(["cell=gru,lstm", *tiny(), "vaa.pictures=true", f"mlflow.tracking_uri={uri}",
                  "mlflow.experiment=slurm-sweep", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                 tmp_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert "Bypassing sacct" not in out and out.count("SLURM accounting (sacct) is off") <= 1
    runs = runs_of(client, "slurm-sweep")
    assert sorted(r.info.run_name for r in runs) == ["gru-partial-copy-s0", "lstm-partial-copy-s0"]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["completed"] == "true"
        assert {"test/loss", "vaa", "settled", "attractors"} <= set(run.data.metrics)
        job = run.data.tags["slurm_job_id"]  # an array's task: squeue shows ARRAY_TASK
        assert run.data.tags["slurm_array"] in slurm_state(job, cluster)
        wait_for(lambda j=job: " COMPLETED " in slurm_state(j, cluster) + " ", 60, "the job's end")
        print(f"squeue: {slurm_state(job, cluster)}")
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"attractors.png", "config.yaml", "checkpoint", "weights"} <= files


def test_a_cancelled_job_resumes_into_the_same_run(cluster, server, sweep, tmp_path):
    """scancel a job mid-epoch; the same sweep, submitted again, resumes the run from its last
    checkpoint in another SLURM job (another id, another pid), into the same MLflow run, and
    ends on the metrics of a straight run."""
    uri, client = server
    size = [*tiny(), "trainer.max_epochs=6", "benchmark.train_size=600",
            f"mlflow.tracking_uri={uri}"]
    straight = sweep([*size, "mlflow.experiment=straight", f"hydra.sweep.dir={tmp_path / 's'}"],
                     tmp_path)
    args = [*size, "mlflow.experiment=cancelled", f"hydra.sweep.dir={tmp_path / 'c'}"]
    first = sweep(args, tmp_path)
    run, deadline = None, time.time() + 300
    while time.time() < deadline and first.poll() is None:  # cancel once epoch 2 is logged
        runs = runs_of(client, "cancelled")
        if runs and runs[0].data.metrics.get("val/loss") is not None:
            steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "val/loss")]
            if max(steps) >= 2:
                run = runs[0]
                subprocess.run(["scancel", run.data.tags["slurm_job_id"]], env=cluster, check=True)
                break
        time.sleep(0.2)
    assert run is not None, "the run ended before epoch 2 could be seen: make it longer"
    job = run.data.tags["slurm_job_id"]
    wait_for(lambda: "CANCELLED" in slurm_state(job, cluster), 60, "the cancelled job")
    print(f"squeue: {slurm_state(job, cluster)}")
    # Without SLURM accounting, submitit cannot see a job cancelled and waits for its result:
    # the user stops the sweep and submits it again.
    stop(first)
    # SIGTERM: Lightning stops the fit and the run ends KILLED; or SIGKILL came first (RUNNING)
    assert client.get_run(run.info.run_id).info.status in ("KILLED", "RUNNING")

    again = sweep(args, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    done = client.get_run(run.info.run_id)
    assert len(runs_of(client, "cancelled")) == 1
    assert done.info.status == "FINISHED" and done.data.tags["resumed"] == "1"
    assert done.data.tags["slurm_job_id"] != job
    wait_for(lambda: " COMPLETED " in slurm_state(done.data.tags["slurm_job_id"], cluster) + " ",
             60, "the resumed job's end")
    print(f"squeue: {slurm_state(done.data.tags['slurm_job_id'], cluster)}")
    logs = "".join(p.read_text() for p in (tmp_path / "c").rglob("*_log.out"))
    assert f"resuming run gru-partial-copy-s0 ({run.info.run_id}) from" in logs

    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out[-3000:]
    (ref,) = runs_of(client, "straight")
    for key in ("train/loss", "val/loss", "vaa", "warmup/loss", "test/loss"):
        got = [(m.step, m.value) for m in client.get_metric_history(done.info.run_id, key)]
        want = [(m.step, m.value) for m in client.get_metric_history(ref.info.run_id, key)]
        assert sorted(got) == sorted(want), key  # every step once, the same values


def test_the_smoke_reproduce_runs_through_slurm(cluster, server, tmp_path):
    """`make reproduce LAUNCHER=slurm_cpu`: every job of every sweep a SLURM job, the runs
    and the summary in the server, one progress line per job."""
    uri, client = server
    cmd = [sys.executable, "-m", "src.reproduce", "--scale", "smoke", "--launcher", "slurm_cpu",
           "--sweep-arg", "hydra.launcher.partition=debug", "--tracking-uri", uri,
           "--out", str(tmp_path / "figures"), "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(cmd, cwd=ROOT, env={**cluster, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = [r for r in runs_of(client, "reproduce-smoke") if r.data.tags.get("figure") != "summary"]
    total = len(runs)
    assert total >= 40 and all(r.data.tags.get("slurm_job_id") for r in runs)
    assert done.stdout.count(f"/{total}] ") == total
    assert (tmp_path / "figures" / "summary.md").exists()
