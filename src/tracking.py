"""MLflow plumbing: the tracking store, run lookup, flattened params, git version.

The default store is embedded: an SQLite file ``outputs/mlflow.db`` with
artifacts beside it in ``outputs/mlartifacts`` (no server to start; MLflow 3
refuses its old file store). ``mlflow.tracking_uri=http://host:port`` sends
runs to a shared MLflow server instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from src.rules import Refusal

ROOT = Path(__file__).resolve().parents[1]


def quiet_mlflow() -> None:
    """MLflow sets its loggers to INFO when imported: keep the schema-migration chatter out,
    and its artifact-download progress bars out of logs."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when MLflow configures logging
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


def resolve_uri(uri: str | None, base: Path) -> str:
    """The tracking URI to use: the embedded store under ``base/outputs`` when ``uri`` is empty."""
    if not uri:
        return f"sqlite:///{(base / 'outputs' / 'mlflow.db').resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of an SQLite store's URI; None for other stores."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside the database for an SQLite store."""
    db = sqlite_path(uri)
    if db is None:
        return None  # a server decides
    return (db.parent / "mlartifacts").resolve().as_uri()


#: The SQLAlchemy database schemes MLflow takes as a tracking store (with or without a
#: ``+driver``), and the port each listens on by default.
DATABASES = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
#: The package that provides a database driver module, where its name differs.
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary",
                   "MySQLdb": "mysqlclient", "pymysql": "pymysql", "pyodbc": "pyodbc",
                   "pymssql": "pymssql"}


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """Refuse, in one line, a tracking URI that cannot work, before anything runs:

    * ``sqlite:///PATH`` (the embedded store) passes;
    * ``http(s)://`` (an MLflow server) must answer within ``timeout`` seconds (any HTTP answer
      counts), else ``ConnectionError``;
    * a SQLAlchemy database URI (``postgresql://``, ``mysql://``, ``mssql://``, each with or
      without ``+driver``) needs its driver installed (:class:`~src.rules.Refusal` naming the
      package) and its server to accept a connection within ``timeout`` (``ConnectionError``);
    * anything else, MLflow's file store (``file:``, a bare path) included, is a ``Refusal``:
      MLflow 3 no longer writes runs there."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    dialect = scheme.split("+", 1)[0]
    if uri.startswith("sqlite:///"):
        return
    if scheme in ("http", "https"):
        return check_server(uri, timeout)
    if dialect in DATABASES:
        return check_database(uri, dialect, timeout)
    what = ("MLflow's file store is not supported (MLflow 3 refuses to write runs to it)"
            if scheme in ("", "file") else f"{scheme}:// is not a store this project can use")
    raise Refusal(
        f"mlflow.tracking_uri={uri}: {what}; use sqlite:///PATH/mlflow.db, a server's "
        "http://host:port, a database (postgresql://, mysql://, mssql://), or leave it unset "
        "for the embedded store outputs/mlflow.db")


def check_server(uri: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConnectionError(
            f"mlflow.tracking_uri={uri}: no tracking server answers there ({reason}); start it "
            "(mlflow server --host ... --port ...) or leave mlflow.tracking_uri unset for the "
            "embedded store") from None


def shown_uri(uri: str) -> str:
    """``uri`` with its password masked, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        return uri.split("@")[-1]


def check_database(uri: str, dialect: str, timeout: float) -> None:
    """A database store: its driver importable, its server accepting a connection."""
    import socket

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = shown_uri(uri)
    try:
        url = make_url(uri)
        url.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise Refusal(f"mlflow.tracking_uri={shown}: not a database URI SQLAlchemy reads "
                      f"({str(err).splitlines()[0]}); write {dialect}://USER:PASSWORD@HOST:PORT/"
                      "DATABASE") from None
    except ImportError as err:
        module = (err.name or str(err).split("'")[1] if "'" in str(err) else "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module)
        raise Refusal(f"mlflow.tracking_uri={shown}: the database driver for {url.drivername} is "
                      f"not installed (no module {module!r}): pip install '{package}' into the "
                      "project's environment (or name an installed driver: "
                      f"{dialect}+DRIVER://...)") from None
    host, port = url.host or "localhost", url.port or DATABASES[dialect]
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(
            f"mlflow.tracking_uri={shown}: no database answers at {host}:{port} ({err}); start "
            "it, or leave mlflow.tracking_uri unset for the embedded store") from None


#: MLflow 3.17's UI opens every experiment in its GenAI view unless the URL (or the browser's
#: last choice) asks for ``workflowType=machine_learning``; the ``mlflow.experimentKind`` tag
#: is no longer read (checked in a headless browser, docs/usage.md).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
#: The runs table's columns in the UI's view of this project's experiments: a "shared view",
#: which MLflow's UI reads from the experiment tag ``mlflow.sharedViewState.<key>`` when the
#: URL carries ``viewStateShareKey=<key>`` (:func:`ui_url`).
VIEW_KEY = "warmup-runs"
VIEW_METRICS = ("vaa", "attractors", "settled", "test/loss", "test/acc", "episodes_to_solve")
VIEW_TAGS = ("cell", "benchmark", "warmup", "method", "seed")
DEFAULT_UI = "http://127.0.0.1:5000"


def view_state() -> str:
    """The shared view's state, as MLflow's UI stores it (JSON; columns as canonical keys)."""
    columns = ["attributes.`Duration`", *(f"metrics.`{m}`" for m in VIEW_METRICS),
               *(f"tags.`{t}`" for t in VIEW_TAGS)]
    return json.dumps({"selectedColumns": columns})


def view_tags() -> dict[str, str]:
    """The experiment tags that make the UI show this project's runs usefully."""
    return {**EXPERIMENT_TAGS, f"mlflow.sharedViewState.{VIEW_KEY}": view_state()}


def ui_file(uri: str) -> Path | None:
    """Where ``make ui`` notes the address it serves an SQLite store at: beside the store."""
    db = sqlite_path(uri)
    return None if db is None else db.with_name(db.name + ".ui")


def served_at(uri: str) -> str:
    """The address of the UI on this store: what ``make ui`` last noted (``make ui PORT=...``),
    else :data:`DEFAULT_UI`."""
    path = ui_file(uri)
    try:
        noted = path.read_text().strip() if path is not None else ""
    except OSError:
        noted = ""
    return noted if noted.startswith(("http://", "https://")) else DEFAULT_UI


def ui_url(uri: str, experiment_id: str, run_id: str | None = None, ui: str | None = None) -> str:
    """The UI page of an experiment's runs table in the model-training view, with the warm-up
    metrics as columns; or of one run. For a server store the server is the UI; for the
    embedded store, ``make ui`` at ``ui`` (default: where it last served, :func:`served_at`)."""
    ui = served_at(uri) if ui is None else ui
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else ui.rstrip("/")
    if run_id is not None:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={VIEW_KEY}")


def ensure_view(client, experiment) -> None:
    """Add the tags of :func:`view_tags` to an experiment that lacks them (made by an earlier
    version, or by hand)."""
    for key, value in view_tags().items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)


def prepare_store(uri: str, experiment: str) -> str:
    """Create the store (and its directory) and the experiment if needed; return the experiment id.

    Called once before the jobs of a sweep start, so parallel jobs never race on
    creating the SQLite schema or the experiment.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    quiet_mlflow()

    with store_lock(uri):
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)  # creates or migrates the schema
        if found is not None:
            ensure_view(client, found)
            return found.experiment_id
        try:
            return client.create_experiment(
                experiment, artifact_location=artifact_location(uri), tags=view_tags())
        except MlflowException:  # created meanwhile by a job on another store lock
            return client.get_experiment_by_name(experiment).experiment_id


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """For an SQLite store, hold an exclusive lock on ``<db>.lock`` (created beside it): two
    processes that open a fresh store at once would both run MLflow's schema migrations, and
    one dies on "duplicate column". Other stores (a server) need no lock."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (start parallel jobs through a Hydra launcher)
        yield
        return
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"net": {"hidden_size": 32}}`` -> ``{"net.hidden_size": 32}``."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


#: Keys that change how a run is shown or where it is logged, not what it computes.
NOT_HASHED = {"mlflow", "sizes", "trainer.progress", "trainer.threads", "vaa.pictures",
              "benchmark.download"}
#: Keys added after runs were stored: hashed only when set, so that the digests of earlier
#: runs (which lack them) stay those of the same config now.
HASHED_WHEN_SET = {"warmup.gain"}
#: Keys removed from the config after runs were stored, with the value every run had: hashed
#: as if still there, so that those runs are found and reused (``warmup.select_every`` went with
#: the retired method ``robust``; no run without ``robust`` read it).
RETIRED = {"warmup.select_every": 10}
#: Versions of a method whose meaning changed under the same config: hashed with it, so that
#: a run of the old meaning is never reused for the new (excite: 1, one fixed gain per cell;
#: 2, gains per layer chosen by measurement; 3, 2026-11-30, the default ladder from gain 1.5,
#: without the gains whose loop gain is below 1.5).
METHOD_VERSIONS = {"excite": 3}


def config_hash(tree: dict) -> str:
    """A short stable digest of what a resolved config computes: equal digests, equal runs.

    Leaves out ``NOT_HASHED`` (the tracking section, display, picture and thread settings, and the
    ``sizes`` table of a reproduce scale, whose values reach the run through the keys
    ``benchmark.*``, ``net.*`` and ``trainer.*`` that are hashed), and the keys of
    ``HASHED_WHEN_SET`` while they are unset.
    """
    body = {k: v for k, v in flatten(tree).items()
            if k not in NOT_HASHED and k.split(".")[0] not in NOT_HASHED
            and not (k in HASHED_WHEN_SET and v is None)}
    if "warmup.method" in body:
        body = {**RETIRED, **body}
    method = body.get("warmup.method")
    if method in METHOD_VERSIONS:
        body["warmup.method_version"] = METHOD_VERSIONS[method]
    return hashlib.sha1(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def search_existing(uri: str, experiment: str, filter_string: str, max_results: int):
    """``(client, runs)`` of ``experiment`` matching ``filter_string``. Creates nothing: a
    store or an experiment that does not exist yet has no runs (``(None, [])``)."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return None, []
    with store_lock(uri):  # an existing store may still be migrated by MLflow on first use
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
    if found is None:
        return client, []
    return client, client.search_runs([found.experiment_id], filter_string=filter_string,
                                      max_results=max_results)


def find_completed(uri: str, experiment: str, digest: str):
    """A run of ``experiment`` that completed with this config digest, or None."""
    _, runs = search_existing(
        uri, experiment, f"tags.config_hash = '{digest}' and tags.completed = 'true'", 1)
    return runs[0] if runs else None


#: SLURM's states of a job that may still run (``squeue --states=all``); any other state, or a
#: job SLURM no longer lists, is over.
SLURM_LIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
              "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


def slurm_job_state(job_id: str) -> str | None:
    """SLURM's state of a job (``RUNNING``, ``CANCELLED``...), ``""`` when SLURM no longer
    lists it, None when SLURM cannot be asked from here."""
    try:
        out = subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": purged after MinJobAge
        return "" if "Invalid job id" in out.stderr else None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def owner_tags() -> dict[str, str]:
    """Who runs this job, for :func:`process_gone`: the host and pid, and under SLURM the job
    (``slurm_job_id``, the array's job and task when it is one) and its restart count."""
    import socket

    tags = {"host": socket.gethostname(), "pid": str(os.getpid())}
    env = os.environ
    if "SLURM_JOB_ID" in env:
        tags["slurm_job_id"] = env["SLURM_JOB_ID"]
        tags["slurm_restart"] = env.get("SLURM_RESTART_COUNT", "0")
        if "SLURM_ARRAY_JOB_ID" in env:
            tags["slurm_array"] = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    return tags


def process_gone(run) -> bool:
    """The process that ran ``run`` no longer exists (killed with SIGKILL, cancelled, crashed:
    it could not end its own run). Under SLURM (tag ``slurm_job_id``) SLURM says so, wherever
    this asks from: the job has ended, or it is this very job started again (requeued, with
    another restart count). Otherwise the run was started on this machine (tags ``host``,
    ``pid``) and its pid is gone. Runs of other machines outside SLURM count as alive."""
    import socket

    tags = run.data.tags
    job = tags.get("slurm_job_id")
    if job:
        if job == os.environ.get("SLURM_JOB_ID"):
            return tags.get("slurm_restart") != os.environ.get("SLURM_RESTART_COUNT", "0")
        state = slurm_job_state(job)
        if state is not None:
            return state not in SLURM_LIVE  # "" (no longer listed) included
    if tags.get("host") != socket.gethostname() or not tags.get("pid", "").isdigit():
        return False
    try:
        os.kill(int(tags["pid"]), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, owned by someone else
        return False
    return False


def close_abandoned(uri: str, experiment: str, digest: str, keep: str | None = None) -> list[str]:
    """Mark ``KILLED`` the runs of this config left ``RUNNING`` by a process of this machine
    that no longer exists, but ``keep`` (the run about to be resumed). Runs of other
    machines, or whose process is alive, are left alone. Returns the ids of the runs marked."""
    client, stale = search_existing(
        uri, experiment, f"tags.config_hash = '{digest}' and attributes.status = 'RUNNING'", 1000)
    marked = []
    for run in stale:
        if run.info.run_id == keep or not process_gone(run):
            continue
        client.set_tag(run.info.run_id, "abandoned", "true")
        client.set_terminated(run.info.run_id, "KILLED")
        marked.append(run.info.run_id)
    return marked


def resume_folder(root: Path, uri: str, experiment: str, digest: str) -> Path:
    """Where a run keeps what it needs to be resumed (src/pipeline.py::train): one folder per
    store, experiment and config digest, so that the same command finds it again, and the
    same config run into another store at the same time does not take it."""
    store = hashlib.sha1(uri.encode()).hexdigest()[:8]
    return root / "outputs" / "resume" / f"{experiment}-{digest}-{store}"


def folder_in_use(uri: str, experiment: str, folder: Path) -> bool:
    """Whether ``folder`` belongs to a run that is ``RUNNING`` now, by a live process (the same
    command started twice at once): that run's folder must not be touched."""
    marker = folder / "run_id"
    if not marker.exists():
        return False
    _, runs = search_existing(uri, experiment,
                              f"attributes.run_id = '{marker.read_text().strip()}'", 1)
    return bool(runs) and runs[0].info.status == "RUNNING" and not process_gone(runs[0])


def find_resumable(uri: str, experiment: str, digest: str,
                   folder: Path) -> tuple[str, tuple[int, int]] | None:
    """``(run id, (last epoch whose losses are in the store, last epoch whose VAA is))`` of the
    run that ``folder`` belongs to, when it can be continued: the folder holds its network
    after warm-up, and the run is ``KILLED`` (Ctrl-C, SIGTERM, or marked so) or still
    ``RUNNING`` with its process gone. None otherwise (then the folder
    is stale: a kill during warm-up, a run that failed or finished, or another machine's)."""
    marker = folder / "run_id"
    if not (marker.exists() and (folder / "warmed.pt").exists()):
        return None
    run_id = marker.read_text().strip()
    _, runs = search_existing(uri, experiment,
                              f"tags.config_hash = '{digest}' and attributes.run_id = '{run_id}'", 1)
    if not runs:
        return None
    run = runs[0]
    if not (run.info.status == "KILLED" or (run.info.status == "RUNNING" and process_gone(run))):
        return None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    losses = max((m.step for m in client.get_metric_history(run_id, "train/loss")), default=0)
    vaa = max((m.step for m in client.get_metric_history(run_id, "vaa")), default=1) - 1
    return run_id, (losses, max(vaa, 0))  # VAA after epoch e is at step 1 + e (src/vaa.py)


#: Untracked files here change what a run computes (a new cell, a new YAML): they make a tree dirty.
SOURCE_DIRS = ("src/", "conf/")


def git_sha(root: Path = ROOT) -> str:
    """The checkout's commit, with ``-dirty`` when a tracked file has changed or an untracked
    file exists under ``src/`` or ``conf/`` (a run with them cannot be rebuilt from the
    commit alone); ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                                cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = any(not line.startswith("??") or line[3:].startswith(SOURCE_DIRS)
                for line in status.splitlines() if line.strip())
    return f"{sha}-dirty" if dirty else sha


class Job:
    """One job's run in the store, from its config to ``FINISHED``: reuse, resume, open, close.

        job = Job(uri, experiment, config, name, root)
        if job.completed() is None:              # else: reuse the finished run of this config
            with job.run(tags, files) as run:    # created, or the killed one resumed
                ...                              # run.run_id; run.folder: what to resume from

    MLflow's ``mlflow.start_run`` creates the run (or sets a resumed one ``RUNNING``) and ends
    it ``FINISHED``, or ``FAILED`` on an exception. Kept here is what it lacks: the config
    digest that finds a run again (:func:`config_hash`), the resume folder that Lightning's
    checkpoints and the warmed network go to, the tag ``completed``, and ``KILLED`` on Ctrl-C or
    SIGTERM (what makes a run resumable; MLflow would say ``FAILED``).
    """

    def __init__(self, uri: str, experiment: str, config: dict, name: str, root: Path):
        self.uri, self.experiment, self.name, self.root = uri, experiment, name, root
        self.params, self.digest = flatten(config), config_hash(config)
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.folder: Path | None = None
        self.logged_until = (0, 0)  # the epochs whose losses, and VAA, the store holds

    def completed(self):
        """The finished run of this config, or None."""
        return find_completed(self.uri, self.experiment, self.digest)

    def negotiate(self, resumable: bool) -> str | None:
        """Choose this job's resume folder, and the run to resume from it (its id) if any;
        mark ``KILLED`` the runs of this config whose process died."""
        folder = (resume_folder(self.root, self.uri, self.experiment, self.digest)
                  if resumable else None)
        if folder is not None and folder_in_use(self.uri, self.experiment, folder):
            print(f"a run of this config is RUNNING in the store, from another live process or "
                  f"another machine ({folder}): this one runs without a resume folder")
            folder = None
        found = find_resumable(self.uri, self.experiment, self.digest, folder) if folder else None
        # Lightning resumes from the last checkpoint; a kill after an epoch's metrics were
        # logged but before its checkpoint was written reruns that epoch: the store says which
        # epochs it holds, so that none is logged twice (src/supervised.py)
        resumed, self.logged_until = found if found else (None, (0, 0))
        for stale in close_abandoned(self.uri, self.experiment, self.digest, keep=resumed):
            print(f"marked run {stale} KILLED: it was left RUNNING by a process that is gone "
                  "(killed or crashed); this run starts afresh")
        if resumed:
            print(f"resuming run {self.name} ({resumed}) from its last checkpoint in {folder}")
        elif folder is not None and folder.exists():
            shutil.rmtree(folder)  # a stale folder: killed during warm-up, or not resumable
        self.folder = folder
        return resumed

    @contextmanager
    def run(self, tags: dict[str, str], files=(), resumable: bool = True) -> Iterator[Job]:
        """The MLflow run of this job, active in the block (``mlflow.log_artifact`` and the like
        log to it): created with ``tags``, the config as params and ``files`` as artifacts, or
        the resumable run continued, its count of ``resumed`` raised. ``FINISHED`` and
        ``completed=true`` when the block ends, ``KILLED`` on Ctrl-C or SIGTERM, ``FAILED`` on
        any other exception (re-raised). ``resumable``: keep a resume folder; it goes when the run
        finishes or diverges."""
        quiet_mlflow()  # before MLflow is imported: its loggers are set up on import
        import mlflow

        resumed = self.negotiate(resumable)
        self.experiment_id = prepare_store(self.uri, self.experiment)  # the store, under a lock
        mlflow.set_tracking_uri(self.uri)
        if resumed:
            before = mlflow.MlflowClient(self.uri).get_run(resumed).data.tags
            tags = {**tags, "resumed": str(int(before.get("resumed", "0")) + 1)}
        with mlflow.start_run(run_id=resumed, experiment_id=self.experiment_id,
                              run_name=self.name, tags=tags) as active:
            self.run_id = active.info.run_id
            if resumed and "abandoned" in before:  # marked KILLED by a later run: resumed now
                mlflow.delete_tag("abandoned")
            elif not resumed:
                mlflow.log_params(self.params)
                for path in files:
                    mlflow.log_artifact(str(path))
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / "run_id").write_text(self.run_id)
            try:
                yield self
            except (KeyboardInterrupt, SystemExit):
                # interrupted: Ctrl-C, or SIGTERM (scancel, a preemption), which Lightning turns
                # into sys.exit(1) and its SIGTERMException (a SystemExit) during a fit
                mlflow.end_run("KILLED")
                raise
            except FloatingPointError as err:  # diverged: nothing to resume, it would diverge again
                self.drop_folder()
                raise FloatingPointError(f"{err} (run {self.name} marked FAILED)") from err
            mlflow.set_tag("completed", "true")
        self.drop_folder()  # finished: the best checkpoint is in the store

    def drop_folder(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def print_ui_links(uri: str, ui: str = DEFAULT_UI) -> None:
    """Each experiment of the store with its runs-table link (``make ui`` prints these), and
    ``ui`` noted beside the store, so that runs print links to the port it serves."""
    from mlflow.tracking import MlflowClient

    quiet_mlflow()
    db, noted = sqlite_path(uri), ui_file(uri)
    if noted is not None and noted.parent.is_dir():
        try:
            noted.write_text(ui + "\n")
        except OSError:
            pass
    if db is not None and not db.exists():
        print(f"no store at {db} yet: run `make run` first")
        return
    client = MlflowClient(uri)
    with store_lock(uri):
        experiments = [e for e in client.search_experiments() if e.name != "Default"]
        for e in experiments:
            ensure_view(client, e)
    for e in experiments:
        print(f"   {e.name}: {ui_url(uri, e.experiment_id, ui=ui)}")


if __name__ == "__main__":  # python -m src.tracking URI [UI]: the links of make ui
    import sys

    print_ui_links(sys.argv[1], *sys.argv[2:3])
