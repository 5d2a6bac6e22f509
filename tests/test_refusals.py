"""The bad-input contract, end to end: every key the schema gives a rule (src/rules.py,
src/schema.py), and the refusals that are not ranges, through ``python -m src.run``'s own
entry (``src.run.cli``, in-process: Hydra's composition and the checks, no subprocess).
Each must exit 2 with one line on stderr that names the key, no traceback, no run folder and
no run in the store, and come before the pipeline (torch, Lightning) is imported: the import
of ``src.pipeline`` is made to fail, so a check moved after it fails here."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import fields, is_dataclass
from typing import get_type_hints

import pytest
from conftest import cli_in_process

from src import schema


def rule_cases(cls=schema.Config, prefix: str = "") -> list[tuple[str, str]]:
    """``(override, key)`` for every key with a rule in the schema, at the rule's bad value:
    a key added with a rule is covered without a new test."""
    out = []
    types = get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(types[f.name]):
            out += rule_cases(types[f.name], f"{prefix}{f.name}.")
        elif "rule" in f.metadata:
            rule = f.metadata["rule"]
            assert rule.bad is not None, f"the rule of {prefix}{f.name} names no bad value"
            out.append((f"{prefix}{f.name}={rule.bad}", f"{prefix}{f.name}"))
    return out


OTHER = [
    ("seed=4294967296", "seed"),  # above what numpy seeds
    ("mlflow.experiment=", "mlflow.experiment"),  # empty
    ("mlflow.tracking_uri=file:///data/mlruns", "mlflow.tracking_uri"),  # MLflow's file store
    ("mlflow.tracking_uri=/data/mlruns", "mlflow.tracking_uri"),  # a bare path
    ("mlflow.tracking_uri=mlruns", "mlflow.tracking_uri"),
    ("mlflow.tracking_uri=foo://host/x", "mlflow.tracking_uri"),  # no such store
    ("mlflow.tracking_uri=http://127.0.0.1:9", "mlflow.tracking_uri"),  # no server
    ("mlflow.tracking_uri=postgresql://u:p@127.0.0.1:9/db", "mlflow.tracking_uri"),
    ("mlflow.tracking_uri=mysql+pymysql://u:p@127.0.0.1:9/db", "mlflow.tracking_uri"),
    ("mlflow.tracking_uri=mssql://u:p@127.0.0.1:9/db", "mlflow.tracking_uri"),
    ("cell=nonesuch", "cell"),
    ("benchmark=nonesuch", "benchmark"),
    ("warmup=nonesuch", "warmup"),
    ("net.hidden_size=abc", "net.hidden_size"),  # a type
]
CASES = rule_cases() + OTHER


def test_every_rule_of_the_schema_is_in_the_table():
    keys = {key for _, key in rule_cases()}
    assert {"seed", "net.hidden_size", "warmup.fraction", "vaa.group_size",
            "mlflow.experiment", "trainer.lr", "warmup.gain"} <= keys
    assert len(keys) >= 20


def refused(args: list[str], key: str, tmp_path, monkeypatch, capsys) -> None:
    """``python -m src.run ARGS`` in ``tmp_path`` (its own store, a run folder three levels
    deep as Hydra's default is): exit 2, one line naming ``key``, no traceback, no run folder
    or empty parents left, no run in the store."""
    store, out = tmp_path / "mlflow.db", tmp_path / "outputs" / "runs" / "today" / "now"
    args = [*args, f"hydra.run.dir={out}"]
    if not any(a.startswith("mlflow.tracking_uri=") for a in args):
        args.append(f"mlflow.tracking_uri=sqlite:///{store}")
    monkeypatch.chdir(tmp_path)
    code = cli_in_process(args, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert key in lines[0] and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "outputs").exists()
    if store.exists():
        with sqlite3.connect(store) as db:
            assert db.execute("select count(*) from runs").fetchone()[0] == 0


@pytest.mark.parametrize("override, key", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_work(override, key, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.setitem(sys.modules, "src.pipeline", None)  # importing it now fails
    refused([override], key, tmp_path, monkeypatch, capsys)


#: Refusals of the data module and the network, found when they are built (after the schema,
#: before any run exists): ``(overrides, key)``.
BUILT = [
    (["benchmark=denoising", "benchmark.seq_length=8"], "benchmark.seq_length"),
    (["benchmark.train_size=0"], "benchmark.train_size"),
    (["benchmark=seq_digits", "benchmark.black_pixels=-1"], "benchmark.black_pixels"),
    (["benchmark=row_digits", "benchmark.train_size=1500", "benchmark.test_size=360"],
     "benchmark.train_size"),
    (["benchmark.data_seed=zero"], "benchmark.data_seed"),
    (["trainer.batch_size=1"], "trainer.batch_size"),
    (["benchmark=seq_mnist", "benchmark.data_dir=/nonexistent", "benchmark.download=false"],
     "benchmark.data_dir"),
    (["benchmark.train_size=40", "vaa.group_size=64", "vaa.groups=1"], "benchmark.train_size"),
]


@pytest.mark.parametrize("overrides, key", BUILT, ids=[" ".join(o) for o, _ in BUILT])
def test_what_the_build_refuses_is_one_line_exit_2(overrides, key, tmp_path, monkeypatch,
                                                    capsys):
    """The data module's and the network's own checks, through the same entry: a plain
    ValueError of theirs must still reach the command line as one line, exit 2, no run."""
    refused(overrides, key, tmp_path, monkeypatch, capsys)


def test_the_refusals_say_what_to_do(tmp_path, monkeypatch, capsys):
    """The words of a few: the file store, a missing database driver (naming the package),
    a seed out of range."""
    said = {}
    for override in ("mlflow.tracking_uri=file:///data/mlruns", "seed=-1",
                     "mlflow.tracking_uri=postgresql://u:secret@127.0.0.1:9/db"):
        assert cli_in_process([override, f"hydra.run.dir={tmp_path}/r"], monkeypatch) == 2
        said[override] = capsys.readouterr().err.strip()
    assert said["mlflow.tracking_uri=file:///data/mlruns"].startswith(
        "error: mlflow.tracking_uri=file:///data/mlruns: MLflow's file store is not supported")
    assert said["seed=-1"] == ("error: seed=-1 must be in [0, 4294967295] (what numpy and "
                               "Lightning can seed)")
    db = said["mlflow.tracking_uri=postgresql://u:secret@127.0.0.1:9/db"]
    assert "secret" not in db and "u:***@127.0.0.1:9/db" in db
    assert ("not installed (no module 'psycopg'): pip install 'psycopg[binary]'" in db
            or "no database answers at 127.0.0.1:9" in db)  # the driver, where it is installed


def test_a_database_that_does_not_answer_is_one_line_quickly(monkeypatch):
    """With the driver present (stood in for here), a database port where nothing listens:
    a ConnectionError in one line, well within 30 s."""
    import time

    from sqlalchemy.engine import URL

    from src import tracking

    class Dialect:
        @staticmethod
        def import_dbapi():
            return None

    monkeypatch.setattr(URL, "get_dialect", lambda self, *a, **k: Dialect)
    started = time.time()
    with pytest.raises(ConnectionError, match=r"no database answers at 127.0.0.1:9") as err:
        tracking.check_reachable("postgresql+psycopg2://u:p@127.0.0.1:9/db", timeout=5)
    assert "\n" not in str(err.value) and time.time() - started < 30
    tracking.check_reachable("sqlite:///anywhere.db")  # the embedded store passes
