"""The whole pipeline: config composition, both stages, MLflow, the CLI, bad input."""

from __future__ import annotations

import math
import os

import pytest
import torch
from conftest import (
    cli_in_process,
    DIGITS,
    ROOT,
    MemoryLogger,
    MNIST,
    SYNTHETIC,
    compose_config,
    names,
    run_cli,
    tiny,
    train_in_process,
    write_mnist,
)

from src.rnn import StackedRNN
from src.pipeline import build
from src.schema import check as check_config


@pytest.mark.parametrize("warmup", ["none", "full", "partial"])
@pytest.mark.parametrize("cell", names("cell"))
def test_every_cell_and_warmup_composes_builds_and_steps(cell, warmup):
    cfg = compose_config([f"cell={cell}", f"warmup={warmup}", *tiny()])
    check_config(cfg)
    dm, net, vaa_inputs = build(cfg)
    assert isinstance(net, StackedRNN)
    assert net.warms_up == (warmup != "none")
    x, y, mask = next(iter(dm.train_dataloader()))
    pred, _ = net(x)
    assert pred.shape[:2] == x.shape[:2] and pred[mask].shape[0] == mask.sum()
    assert vaa_inputs.shape[1] == cfg.vaa.groups * cfg.vaa.group_size


@pytest.mark.parametrize("benchmark", [b for b in names("benchmark") if b not in MNIST])
def test_every_benchmark_composes_and_builds(benchmark):
    cfg = compose_config([f"benchmark={benchmark}", *tiny(benchmark)])
    dm, net, _ = build(cfg)
    assert net.layers[0].warm.input_size == dm.input_size
    assert net.readout.out_features == dm.output_size
    kind = {"tmaze": "rl", **{b: "classification" for b in DIGITS}}
    assert dm.task == kind.get(benchmark, "regression")


def test_warmup_parallel_is_the_structure_without_warmup(tmp_path):
    """`warmup=parallel` (the fourth option of the warm-up axis) builds the same network as
    `warmup=none net.parallel=true` and takes no warm-up step."""
    torch.manual_seed(0)
    _, a, _ = build(compose_config(["warmup=parallel", *tiny()]))
    torch.manual_seed(0)
    _, b, _ = build(compose_config(["warmup=none", "net.parallel=true", *tiny()]))
    assert a.layers[0].warm.hidden_size == a.layers[0].plain.hidden_size == 4
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # tiny() and the scales set warmup.steps: the ablation still warms nothing
    result, metrics = train_in_process(tmp_path, ["warmup=parallel", *tiny()])
    assert "warmup/loss" not in metrics and result["vaa/init"] == result["vaa/warmup"]
    cfg = compose_config(["+figure=precision", "+scale=smoke", "warmup=parallel"])
    assert cfg.warmup.steps == 4 and cfg.warmup.active is False


def test_parallel_ablation_composes_without_warmup():
    cfg = compose_config(["warmup=none", "net.parallel=true", *tiny()])
    _, net, _ = build(cfg)
    assert not net.warms_up and net.layers[0].plain.hidden_size == 4


def test_both_stages_log_the_interface_metrics(tmp_path):
    result, metrics = train_in_process(tmp_path, ["warmup=partial", *tiny()])

    def steps(key):
        return [s for s, _ in metrics[key]]

    assert steps("warmup/vaa_star") == [0, 1, 2, 3] and steps("warmup/loss") == [0, 1, 2, 3]
    assert steps("train/loss") == [1, 2] and steps("val/loss") == [1, 2]
    for key in ("vaa", "attractors", "settled", "fixed_points"):
        assert steps(key) == [0, 1, 2, 3], key
    for (_, v), (_, n), (_, s), (_, f) in zip(*(metrics[k] for k in (
            "vaa", "attractors", "settled", "fixed_points"))):
        assert 1 / 16 - 1e-6 <= v <= 1 and n == pytest.approx(16 * v)
        assert 0 <= s <= 1 and 0 <= f <= n + 1e-6
    assert math.isfinite(result["test/loss"]) and "test/acc" not in result
    assert (tmp_path / "checkpoints" / "best.ckpt").exists()


def test_the_default_warm_up_is_the_papers_lightning_stage(tmp_path):
    """warmup=partial without a method is the paper's: one point of the loss, of VAA* and of
    each layer's VAA* per gradient step, and the summary numbers of the stage."""
    result, metrics = train_in_process(tmp_path, ["warmup=partial", *tiny(),
                                                  "warmup.steps=20"])
    for key in ("warmup/loss", "warmup/vaa_star", "warmup/vaa_star_l0", "warmup/vaa_star_l1"):
        assert [s for s, _ in metrics[key]] == list(range(20)), key
    assert result["warmup/loss_first"] == metrics["warmup/loss"][0][1]
    assert result["warmup/loss_last"] == metrics["warmup/loss"][-1][1]
    assert result["warmup/vaa_star_last"] == metrics["warmup/vaa_star"][-1][1]
    assert 1 <= result["warmup/horizon_last"] <= 1 + 10 * 19
    assert "warmup/select_vaa" not in metrics


def test_excite_logs_its_candidates_and_the_gain_chosen(tmp_path):
    """One point per candidate (step = its index), the chosen gain and whether the candidate
    biases were zeroed at step 0, and no gradient-step metrics."""
    _, metrics = train_in_process(tmp_path, ["cell=lstm", "warmup=full", *tiny(method="excite")])
    steps = [s for s, _ in metrics["warmup/select_vaa"]]
    # as built, 7 gains x 2 (lstm's biases), then 6 other gains per layer (none if as built won)
    assert steps == list(range(len(steps))) and 15 <= len(steps) <= 27
    gains = [v for layer in (0, 1) for _, v in metrics[f"warmup/gain_l{layer}"]]
    (_, centre), = metrics["warmup/centre"]
    assert len(gains) == 2 and all(g in (0.0, 2, 3, 4, 6, 8, 12, 16) for g in gains)
    assert centre in (0.0, 1.0)
    assert "warmup/loss" not in metrics and "warmup/vaa_star" not in metrics


def test_warmup_none_skips_stage_one(tmp_path):
    result, metrics = train_in_process(tmp_path, ["warmup=none", *tiny()])
    assert "warmup/loss" not in metrics
    assert result["vaa/init"] == result["vaa/warmup"]


def test_classification_reports_accuracy(tmp_path):
    result, _ = train_in_process(tmp_path, ["benchmark=seq_digits", "warmup=none", *tiny("seq_digits")])
    assert 0 <= result["test/acc"] <= 1


def test_same_seed_same_numbers(tmp_path):
    a, ma = train_in_process(tmp_path / "a", ["seed=3", *tiny()])
    b, mb = train_in_process(tmp_path / "b", ["seed=3", *tiny()])
    c, _ = train_in_process(tmp_path / "c", ["seed=4", *tiny()])
    assert a["test/loss"] == b["test/loss"] and ma == mb
    assert a["test/loss"] != c["test/loss"]


def test_cli_run_logs_one_complete_mlflow_run(tmp_path, store, monkeypatch):
    """One run as a user starts it, on a host where SLURM's srun exists (a stand-in on PATH)
    but the run is not a SLURM job: no warning about srun."""
    uri, client = store
    out = tmp_path / "run"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    proc = run_cli(["cell=gru", "warmup=partial", *tiny(), "vaa.pictures=true",
                    f"mlflow.tracking_uri={uri}", "mlflow.experiment=e2e", f"hydra.run.dir={out}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "srun" not in proc.stderr
    assert "test/loss" in proc.stdout and uri in proc.stdout
    assert "warm-up (4 Adam steps on VAA*) loss " in proc.stdout
    exp = client.get_experiment_by_name("e2e")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "gru-partial-copy-s0"
    (data,) = client.get_run(run.info.run_id).inputs.dataset_inputs  # the Datasets column
    assert data.dataset.name == "copy" and len(data.dataset.digest) == 16
    assert "CopyFirstInput, data_seed 0" in data.dataset.source
    note = run.data.tags["mlflow.note.content"]  # the run page's Description: what, and how it ended
    assert note.startswith("gru-partial-copy-s0: cell gru, partial warm-up (paper, fraction 0.5), "
                           "benchmark copy, seed 0; test/loss ") and "; VAA " in note
    tags = run.data.tags
    assert {tags[k] for k in ("cell", "benchmark", "warmup", "seed")} == {"gru", "copy", "partial", "0"}
    assert tags["git_sha"] and tags["completed"] == "true"
    assert run.data.params["net.hidden_size"] == "8" and run.data.params["warmup.fraction"] == "0.5"
    for key in ("warmup/vaa_star", "warmup/loss", "train/loss", "val/loss", "vaa", "attractors",
                "test/loss"):
        assert key in run.data.metrics, key
    assert len(client.get_metric_history(run.info.run_id, "warmup/loss")) == 4
    assert len(client.get_metric_history(run.info.run_id, "vaa")) == 4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoint", "attractors.png", "weights"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/best.ckpt"]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "weights")} == {
        "weights/init.pt", "weights/warmup.pt"}

    # any finished run's picture, redrawn by the command; its initial weights are the
    # seeded build's, which is what the command falls back on for runs without them
    from src.attractors import rerun

    png = tmp_path / "again.png"
    rerun.main([run.info.run_id, "--tracking-uri", uri, "--out", str(png)])
    assert png.stat().st_size > 10_000
    cfg, net, _ = rerun.rebuild(client, run.info.run_id, tmp_path)
    weights = rerun.run_weights(client, run.info.run_id, cfg, net, tmp_path)
    assert list(weights) == ["init", "warmup", "trained"]
    assert all(torch.equal(v, weights["init"][k]) for k, v in net.state_dict().items())
    assert not torch.equal(weights["init"]["layers.0.warm.weight_hh"],
                           weights["warmup"]["layers.0.warm.weight_hh"])
    with pytest.raises(SystemExit, match="no run 'nope' in the store"):
        rerun.main(["nope", "--tracking-uri", uri])


def test_cli_multirun_makes_one_named_run_per_job(tmp_path, store):
    """Two jobs at a time (Hydra's joblib launcher, as `make reproduce` runs them) on a fresh
    store: every run lands, once, finished."""
    uri, client = store
    proc = run_cli(["-m", "cell=gru", "warmup=none,partial", *tiny(),
                    "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    f"mlflow.tracking_uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = client.get_experiment_by_name("warmup")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["gru-none-copy-s0", "gru-partial-copy-s0"]
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.parametrize("args,expected", [
    (["net.hidden_size=abc"], "net.hidden_size='abc': Value 'abc' of type 'str' could not be"),
    (["warmup.fraction=1.5"], "warmup.fraction=1.5 must be in [0, 1]"),
    (["benchmark=seq_mnist", "benchmark.data_dir=/nonexistent", "benchmark.download=false"],
     "train-images-idx3-ubyte"),
    (["cell=brc", "warmup.method=excite", "warmup.gain=4"], "cell BRC declares no excitation block"),
    pytest.param(["trainer.accelerator=gpu"], "trainer.accelerator=gpu: torch 2.13.0",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_cli_bad_input_fails_fast_on_one_line_and_leaves_no_run(tmp_path, store, args, expected):
    """The ways a run is refused: a type (the schema, before Hydra), a range (the config
    checks), a build that fails on the data (every benchmark's bad values are checked
    in-process in test_benchmarks.py), a method the cell cannot take."""
    uri, client = store
    out = tmp_path / "run"
    proc = run_cli([*args, f"mlflow.tracking_uri={uri}", f"hydra.run.dir={out}"], timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert not out.exists()
    assert client.get_experiment_by_name("warmup") is None  # no store entry, no run


def test_stores_and_devices_that_cannot_work_are_refused_in_one_line():
    """MLflow's file store (MLflow 3 refuses it) and an accelerator Lightning does not know:
    one line each, saying what to use instead, as the Refusal the command line says in one
    line (a plain ValueError would be a traceback there)."""
    from src import tracking
    from src.rules import Refusal

    for uri in ("file:///tmp/mlruns", "/tmp/mlruns"):
        with pytest.raises(Refusal, match="file store is not supported.*sqlite:///"):
            tracking.check_reachable(uri)
    tracking.check_reachable("sqlite:////tmp/x.db")  # the embedded store passes
    with pytest.raises(Refusal, match="trainer.accelerator=gpus must be one of auto, cpu"):
        check_config(compose_config(["trainer.accelerator=gpus"]))


@pytest.mark.parametrize("benchmark", [b for b in names("benchmark") if b != "tmaze"])
def test_every_benchmark_trains_and_tests(benchmark, tmp_path):
    """Every benchmark through both stages and the test, in-process at a tiny size (MNIST
    reads small IDX files written here); the command line itself is covered once, by
    test_cli_run_logs_one_complete_mlflow_run and the multirun test. The T-Maze's stage 2 is
    reinforcement learning: tests/test_tmaze.py."""
    extra = []
    if benchmark in MNIST:
        write_mnist(tmp_path / "mnist", gz=True)
        extra = ["benchmark.train_size=40", "benchmark.test_size=15",
                 f"benchmark.data_dir={tmp_path / 'mnist'}"]
        if benchmark != "row_mnist":  # 787 steps a sequence: one epoch, fewer warm-up steps
            extra += ["trainer.max_epochs=1", "warmup.steps=2"]
    result, metrics = train_in_process(tmp_path, [f"benchmark={benchmark}", "warmup=partial",
                                        *tiny(benchmark), "trainer.batch_size=8",
                                        "vaa.group_size=8", *extra])
    assert math.isfinite(result["test/loss"]) and len(metrics["warmup/loss"]) in (2, 4)
    assert ("test/acc" in result) == (benchmark not in SYNTHETIC)


def test_git_sha_is_dirty_with_untracked_sources(tmp_path):
    """A run made with a new, uncommitted cell file cannot be rebuilt from the commit: its
    `git_sha` tag says `-dirty`; an untracked file elsewhere (outputs) does not count."""
    import subprocess

    from src.tracking import git_sha

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    clean = git_sha(tmp_path)
    assert len(clean) == 40
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.log").write_text("")
    assert git_sha(tmp_path) == clean
    (tmp_path / "src" / "leaky.py").write_text("y = 2\n")
    assert git_sha(tmp_path) == clean + "-dirty"
    (tmp_path / "src" / "leaky.py").unlink()
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert git_sha(tmp_path) == clean + "-dirty"


@pytest.mark.parametrize("override, expected", [
    ("warmup.method=fast", "warmup.method=fast must be one of paper, excite"),
    ("warmup.method=robust", "warmup.method=robust must be one of paper, excite"),
    ("warmup.fraction=1.5", "warmup.fraction=1.5 must be in [0, 1]"),
])
def test_check_config_refuses_values_out_of_range_in_one_line(override, expected):
    from src.rules import Refusal

    with pytest.raises(Refusal) as err:
        check_config(compose_config([override]))
    assert str(err.value) == expected


@pytest.mark.parametrize("overrides, expected", [
    (["net.hidden_size=abc"],
     "net.hidden_size='abc': Value 'abc' of type 'str' could not be converted to Integer"),
    (["warmup.lr=fast"], "warmup.lr='fast': Value 'fast' of type 'str' could not be converted to Float"),
    (["trainer.threads=two"],
     "trainer.threads='two': Value 'two' of type 'str' could not be converted to Integer"),
    (["vaa.pictures=maybe"], "vaa.pictures='maybe': Value 'maybe' is not a valid bool (type str)"),
    (["seed=1.5"], "seed=1.5: Value '1.5' of type 'float' could not be converted to Integer"),
    (["warmup.stepz=5"], "warmup.stepz: Key 'stepz' not in 'WarmupConf'"),
    (["-m", "cell=gru,lstm", "net.hidden_size=32,abc"],  # a sweep: each value is checked
     "net.hidden_size='abc': Value 'abc' of type 'str' could not be converted to Integer"),
    (["cell=foo"], "In 'config': Could not find 'cell/foo' Available options in 'cell': brc "
                   "chrono gru lstm mgu nbrc rnn"),
])
def test_wrong_types_are_refused_by_the_schema_in_one_line(overrides, expected, tmp_path,
                                                           monkeypatch, capsys):
    """Types are OmegaConf's, from the schema (src/schema.py), applied by Hydra when it
    composes; `python -m src.run` says its refusal in one line, exit status 2, and nothing is
    written. In-process: Hydra's composition, no subprocess."""
    monkeypatch.chdir(tmp_path)
    assert cli_in_process([*overrides, f"hydra.run.dir={tmp_path / 'r'}",
                           f"hydra.sweep.dir={tmp_path / 'm'}"], monkeypatch) == 2
    assert capsys.readouterr().err.strip() == f"error: {expected}"
    assert not (tmp_path / "r").exists() and not (tmp_path / "outputs").exists()  # no run, no store
    assert os.environ.get("HYDRA_FULL_ERROR") is None  # the entry point restores the environment


@pytest.mark.parametrize("override", ["net.hidden_size=abc", "warmup.stepz=5", "vaa.eps=small"])
def test_hydra_composition_is_typed_by_the_schema(override):
    """The schema is in the defaults list: any composition (a test, a script, a sweep's job)
    refuses a wrong type or an unknown key, not only the command line."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_config([override])


def test_the_schema_accepts_what_the_configs_use():
    """What a user or a sweep writes that is well typed composes and passes the range checks:
    interpolations, null for the optional keys, Hydra's own keys."""
    cfg = compose_config(["net.hidden_size=${trainer.batch_size}", "trainer.threads=null",
                          "mlflow.tracking_uri=http://h:5000", "+figure=precision",
                          "benchmark.seq_length=50", "warmup.lr=1e-3", "trainer.devices=[0,1]",
                          "hydra.job.chdir=false"])
    check_config(cfg)
    assert cfg.net.hidden_size == cfg.trainer.batch_size and cfg.trainer.threads is None


@pytest.mark.parametrize("overrides, digest", [
    ([], "c85a9574500260f9"),  # make run
    (["+figure=precision", "+scale=cpu", "+figure/benchmark=seq_digits", "cell=gru",
      "warmup=partial", "seed=3"], "a2d0b691f2072305"),  # a job of make reproduce
    (["+figure=multistability_curves", "+scale=cpu", "+figure/benchmark=copy", "cell=lstm",
      "warmup=full", "seed=7"], "fe5755ca59db550c"),
    (["benchmark=seq_mnist"], "abf05ba62095835e"),
    (["warmup.method=excite", "cell=mgu"], "24e47f43fabea0f3"),
])
def test_stored_runs_keep_their_digests(overrides, digest):
    """Digests pinned as literals (computed at commit c76437a): a change that alters every
    stored digest, so that no stored run is reused any more, fails here; a change that means
    to must say so in CHANGELOG.md and update these."""
    from omegaconf import OmegaConf

    from src import tracking

    tree = OmegaConf.to_container(compose_config(overrides), resolve=True)
    assert tracking.config_hash(tree) == digest


def test_a_key_added_later_leaves_earlier_digests_alone():
    """warmup.gain came after runs were stored: unset, it is not hashed, so the digest of a
    config is what it was before the key existed (completed runs are still reused)."""
    from omegaconf import OmegaConf

    from src import tracking

    tree = OmegaConf.to_container(compose_config([]), resolve=True)
    digest = tracking.config_hash(tree)
    del tree["warmup"]["gain"]
    assert tracking.config_hash(tree) == digest
    tree["warmup"]["gain"] = 3.0
    assert tracking.config_hash(tree) != digest


def test_a_method_whose_meaning_changed_gets_a_new_digest_and_paper_keeps_its_own():
    """excite chose a fixed gain per cell until it chose gains by measurement: a run of the
    old meaning (same keys) must not be reused. The paper's digests are those of before."""
    import hashlib
    import json

    from omegaconf import OmegaConf

    from src import tracking

    def old_hash(tree):  # the digest before method versions existed
        body = {k: v for k, v in tracking.flatten(tree).items()
                if k not in tracking.NOT_HASHED and k.split(".")[0] not in tracking.NOT_HASHED
                and not (k in tracking.HASHED_WHEN_SET and v is None)}
        return hashlib.sha1(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def then(tree):  # the same config while the retired method robust had its key
        return {**tree, "warmup": {**tree["warmup"], "select_every": 10}}

    excite = OmegaConf.to_container(compose_config(["warmup.method=excite"]), resolve=True)
    paper = OmegaConf.to_container(compose_config(["warmup.method=paper"]), resolve=True)
    assert "select_every" not in paper["warmup"]
    assert tracking.config_hash(excite) != old_hash(then(excite))
    assert tracking.config_hash(paper) == old_hash(then(paper))  # stored runs are reused


def test_an_unloadable_target_keeps_its_cause_on_one_line():
    """Hydra reports a `_target_` that cannot be imported as "Error loading 'x':" with the
    ImportError on the next lines; the one-line error keeps the cause."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from src.rules import one_line

    with pytest.raises(InstantiationException) as err:
        instantiate({"_target_": "src.cells.leaky.Leaky"}, input_size=1, hidden_size=2)
    message = one_line(err.value.__cause__ or err.value)
    assert "\n" not in message and "src.cells.leaky.Leaky" in message
    assert "No module named 'src.cells.leaky'" in message


def test_a_run_block_ends_its_run_finished_failed_or_killed(store, tmp_path):
    """The run lifecycle of src/run.py's main is tracking.Job.run: the block's outcome is the
    run's status, and only a normal end marks it completed (reusable)."""
    from src import tracking

    uri, client = store
    ends = {}
    for outcome in ("ok", "error", "interrupt", "sigterm"):
        try:
            job = tracking.Job(uri, "life", {"net": {"hidden_size": 8}}, outcome, tmp_path)
            with job.run({"cell": "gru"}, resumable=False) as run:
                ends[outcome] = run.run_id
                if outcome == "error":
                    raise RuntimeError("boom")
                if outcome == "interrupt":
                    raise KeyboardInterrupt
                if outcome == "sigterm":  # Lightning's SIGTERMException, and its Ctrl-C
                    raise SystemExit(1)
        except (RuntimeError, KeyboardInterrupt, SystemExit):
            pass
    runs = {r.info.run_id: r for r in client.search_runs(
        [client.get_experiment_by_name("life").experiment_id])}
    assert {k: runs[v].info.status for k, v in ends.items()} == {
        "ok": "FINISHED", "error": "FAILED", "interrupt": "KILLED", "sigterm": "KILLED"}
    assert [k for k, v in ends.items() if runs[v].data.tags.get("completed") == "true"] == ["ok"]
    assert runs[ends["ok"]].data.params == {"net.hidden_size": "8"}


def test_refusals_come_before_the_heavy_imports(tmp_path):
    """A bad value is refused by src/schema.py and src/run.py alone: neither imports torch."""
    import subprocess
    import sys

    code = ("import sys, src.run, src.schema; "
            "print(sorted(m for m in ('torch', 'pytorch_lightning', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_an_unreachable_tracking_server_is_one_line_quickly():
    import time

    from src import tracking

    started = time.time()
    with pytest.raises(ConnectionError, match=r"mlflow.tracking_uri=http://127.0.0.1:9: no "
                                              r"tracking server answers there") as err:
        tracking.check_reachable("http://127.0.0.1:9", timeout=5)
    assert "\n" not in str(err.value) and time.time() - started < 30
    tracking.check_reachable("sqlite:///nowhere.db")  # stores other than servers pass


@pytest.mark.parametrize("lr, said", [
    ("1e30", "supervised loss became inf at epoch 1"),  # non-finite within the first batches
    ("1e9", "supervised loss diverged: train/loss"),  # finite, orders of magnitude too large
])
def test_a_diverged_run_is_one_line_and_failed(tmp_path, store, lr, said):
    """A learning rate that blows the loss up: exit 1, one line naming the stage and the
    knob, the run FAILED. A loss that stays finite but explodes (lr 1e9: about 1e19 after an
    epoch) is caught by Lightning's EarlyStopping at DIVERGED; a non-finite one at once.
    (A non-finite learning rate is refused before the run: the ranges are the schema's.)"""
    uri, client = store
    proc = run_cli(["warmup=full", *tiny(), f"trainer.lr={lr}", f"mlflow.tracking_uri={uri}",
                    f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert said in errors[0] and "lower trainer.lr" in errors[0]
    (run,) = client.search_runs([client.get_experiment_by_name("warmup").experiment_id])
    assert run.info.status == "FAILED" and "completed" not in run.data.tags


def test_a_diverged_warm_up_names_its_step_and_knob(tmp_path):
    """The warm-up stage's own divergence (an infinite learning rate, which only the library
    takes): FloatingPointError naming the step and warmup.lr, which src.run says in one line."""
    from src.pipeline import warm_up

    cfg = compose_config(["warmup=full", *tiny(), "warmup.lr=inf"])
    dm, net, _ = build(cfg)
    with pytest.raises(FloatingPointError, match=r"warm-up loss became nan at step \d+: lower "
                                                 r"warmup.lr \(now inf\)"):
        warm_up(cfg, dm, net, MemoryLogger(), tmp_path)


def test_experiments_carry_the_runs_table_view(store, capsys):
    """A new experiment, and one made without the tags (an older version), get the shared view
    of MLflow's UI: the key its link names, the warm-up metrics as columns."""
    import json

    from src import tracking

    uri, client = store
    bare = client.create_experiment("older")
    for exp_id in (tracking.prepare_store(uri, "view"), tracking.prepare_store(uri, "older")):
        tags = client.get_experiment(exp_id).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        state = json.loads(tags[f"mlflow.sharedViewState.{tracking.VIEW_KEY}"])
        for column in ("metrics.`vaa`", "metrics.`attractors`", "metrics.`test/loss`",
                       "metrics.`test/acc`", "tags.`cell`", "tags.`warmup`"):
            assert column in state["selectedColumns"]
    url = tracking.ui_url(uri, bare)
    assert url == (f"http://127.0.0.1:5000/#/experiments/{bare}/runs?"
                   f"workflowType=machine_learning&viewStateShareKey={tracking.VIEW_KEY}")
    assert tracking.ui_url("http://host:5001/", "3", "abc") == (
        "http://host:5001/#/experiments/3/runs/abc?workflowType=machine_learning")
    tracking.print_ui_links(uri, "http://127.0.0.1:5002")
    assert f"older: http://127.0.0.1:5002/#/experiments/{bare}/runs?" in capsys.readouterr().out


def test_runs_started_at_once_on_a_fresh_store_all_land(tmp_path):
    """Three `python -m src.run` started at the same moment (three terminals) on a store that
    does not exist yet: MLflow's schema is created once, under a lock, and every run lands."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"  # untouched until the runs start
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "src.run", f"seed={seed}", *tiny(), "trainer.max_epochs=1",
         f"mlflow.tracking_uri={uri}", f"hydra.run.dir={tmp_path / str(seed)}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("warmup").experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"gru-partial-copy-s{s}" for s in range(3)]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_run_left_running_by_a_dead_process_is_marked_killed(store):
    """A SIGKILLed run cannot end its own MLflow run; the next run of its config marks it
    KILLED (never left RUNNING), and leaves alone runs whose process is alive."""
    import socket
    import subprocess
    import sys

    from src import tracking

    uri, client = store
    exp_id = tracking.prepare_store(uri, "warmup")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ids = {}
    for who, pid in (("dead", dead), ("alive", str(os.getpid()))):
        ids[who] = client.create_run(exp_id, run_name=who, tags={
            "config_hash": "d1", "host": socket.gethostname(), "pid": pid}).info.run_id
    assert tracking.close_abandoned(uri, "warmup", "d1") == [ids["dead"]]
    assert client.get_run(ids["dead"]).info.status == "KILLED"
    assert client.get_run(ids["alive"]).info.status == "RUNNING"
    assert compose_config([]).mlflow.skip_finished is True  # a finished run is reused


def test_a_killed_run_resumes_from_its_last_epoch_into_the_same_run(tmp_path, store):
    """Fault injection: SIGKILL during stage 2 (as epoch 3 starts, from inside the process:
    no race with a poll), then the same command. The same MLflow run is continued from the
    last completed epoch: one run, each epoch's curve point once, and the final numbers of an
    uninterrupted run (same seed, same threads)."""
    import signal
    import subprocess
    import sys

    uri, client = store
    args = ["cell=gru", "warmup=partial", *tiny(), "net.hidden_size=8", "trainer.max_epochs=6",
            "benchmark.seq_length=40", "benchmark.train_size=400", "trainer.threads=1",
            f"mlflow.tracking_uri={uri}"]
    straight = run_cli([*args, "mlflow.experiment=straight"], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]

    # the real entry point, killed by SIGKILL as epoch 3 starts (epoch 2 logged and saved)
    killer = tmp_path / "kill_at_epoch_3.py"
    killer.write_text(
        "import os, signal, sys\n"
        "from src import run, supervised\n"
        "def start(self):\n"
        "    if self.current_epoch == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "supervised.SupervisedModule.on_train_epoch_start = start\n"
        "sys.argv = ['src.run', *sys.argv[1:]]\n"
        "run.cli()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(killer), *args, "mlflow.experiment=resumed"],
                          cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (run,) = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    assert max(m.step for m in client.get_metric_history(run.info.run_id, "val/loss")) == 2
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # what SIGKILL leaves
    folders = list((tmp_path / "outputs" / "resume").iterdir())
    assert len(folders) == 1 and (folders[0] / "last.ckpt").exists()

    again = run_cli([*args, "mlflow.experiment=resumed"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming run gru-partial-copy-s0 ({run.info.run_id}) from" in again.stdout
    (done,) = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    assert done.info.run_id == run.info.run_id and done.info.status == "FINISHED"
    assert done.data.tags["resumed"] == "1" and done.data.tags["completed"] == "true"
    (ref,) = client.search_runs([client.get_experiment_by_name("straight").experiment_id])
    for key in ("train/loss", "val/loss", "vaa", "warmup/loss"):
        got = [(m.step, m.value) for m in client.get_metric_history(done.info.run_id, key)]
        want = [(m.step, m.value) for m in client.get_metric_history(ref.info.run_id, key)]
        assert sorted(got) == sorted(want), key  # every step once, the same values
    assert done.data.metrics["test/loss"] == ref.data.metrics["test/loss"]
    assert not folders[0].exists()  # finished: nothing left to resume


def test_only_a_run_killed_after_its_warm_up_is_resumable(tmp_path, store):
    """A kill during warm-up leaves no warmed network: the run is marked KILLED and the next
    one starts afresh. After warm-up, a run left RUNNING by a dead process, or KILLED, is
    resumable; a FAILED or FINISHED one, or one whose process lives, never is."""
    import socket
    import subprocess
    import sys

    from src import tracking

    uri, client = store
    exp_id = tracking.prepare_store(uri, "e")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    folder = tracking.resume_folder(tmp_path, uri, "e", "d2")
    folder.mkdir(parents=True)
    assert tracking.resume_folder(tmp_path, uri + "x", "e", "d2") != folder  # another store
    assert not tracking.folder_in_use(uri, "e", folder)

    def run_with(pid):
        run_id = client.create_run(exp_id, tags={"config_hash": "d2", "host": socket.gethostname(),
                                                 "pid": pid}).info.run_id
        (folder / "run_id").write_text(run_id)
        return run_id

    run_id = run_with(dead)
    assert tracking.find_resumable(uri, "e", "d2", folder) is None  # killed during warm-up
    (folder / "warmed.pt").write_bytes(b"x")
    client.log_metric(run_id, "train/loss", 0.5, step=3)
    assert tracking.find_resumable(uri, "e", "d2", folder) == (run_id, (3, 0))
    client.set_terminated(run_id, "KILLED")
    assert tracking.find_resumable(uri, "e", "d2", folder) == (run_id, (3, 0))
    for status in ("FAILED", "FINISHED"):
        client.set_terminated(run_id, status)
        assert tracking.find_resumable(uri, "e", "d2", folder) is None
    assert not tracking.folder_in_use(uri, "e", folder)  # FINISHED
    run_with(str(os.getpid()))  # its process is alive (this one)
    assert tracking.find_resumable(uri, "e", "d2", folder) is None
    assert tracking.folder_in_use(uri, "e", folder)  # so the same command now leaves it alone


def test_a_slurm_run_is_judged_by_its_job_not_its_pid(monkeypatch, tmp_path):
    """A run tagged with its SLURM job is over when SLURM says its job is over, wherever this
    asks from (the pid and host are another node's); the same job started again (requeued, a
    new restart count) owns it no more; where SLURM cannot be asked, the host and pid decide."""
    import socket
    from types import SimpleNamespace

    from src import tracking

    def run(**tags):
        return SimpleNamespace(data=SimpleNamespace(tags=tags))

    alive = dict(host=socket.gethostname(), pid=str(os.getpid()))
    elsewhere = dict(host="node-7", pid="12")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    states = {"41": "RUNNING", "42": "CANCELLED", "43": "", "44": None}
    monkeypatch.setattr(tracking, "slurm_job_state", lambda job: states[job])
    assert not tracking.process_gone(run(slurm_job_id="41", **elsewhere))
    assert tracking.process_gone(run(slurm_job_id="42", **elsewhere))  # cancelled
    assert tracking.process_gone(run(slurm_job_id="43", **elsewhere))  # purged: long over
    assert not tracking.process_gone(run(slurm_job_id="44", **elsewhere))  # cannot ask: alive
    assert not tracking.process_gone(run(slurm_job_id="44", **alive))  # ... and its pid lives
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # this job, requeued once
    assert tracking.process_gone(run(slurm_job_id="41", slurm_restart="0", **alive))
    assert not tracking.process_gone(run(slurm_job_id="41", slurm_restart="1", **alive))
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "40")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert tracking.owner_tags() == {**alive, "slurm_job_id": "41", "slurm_restart": "1",
                                     "slurm_array": "40_1"}


def test_the_warm_up_shows_its_steps_not_negative_epochs(tmp_path, capfd):
    """Lightning runs the warm-up stage for max_steps with no epoch limit, which its progress
    display shows as "Epoch 0/-2": the stage shows its steps against their total instead."""
    train_in_process(tmp_path, ["warmup=partial", *tiny(), "trainer.progress=true"])
    out = capfd.readouterr().out
    assert "Warm-up steps" in out and "4/4" in out
    assert "/-" not in out and "Epoch 1/1" in out


def test_the_browse_link_names_the_port_make_ui_serves(store, capsys):
    """`make ui PORT=5999` notes its address beside the store; runs then link there."""
    from src import tracking

    uri, _ = store
    assert tracking.ui_url(uri, "1", "r").startswith("http://127.0.0.1:5000/#/experiments/1/")
    tracking.prepare_store(uri, "ui")
    tracking.print_ui_links(uri, "http://127.0.0.1:5999")
    assert "http://127.0.0.1:5999/#/experiments/" in capsys.readouterr().out
    assert tracking.ui_url(uri, "1", "r").startswith("http://127.0.0.1:5999/#/experiments/1/")
    assert tracking.ui_url("http://host:5000", "1").startswith("http://host:5000/")  # a server
