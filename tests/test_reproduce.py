"""`make reproduce`: the figure sweeps compose, the figure scripts read MLflow right, and the
whole smoke chain runs and resumes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from conftest import ROOT, compose_config, names
from omegaconf import OmegaConf

from src.reproduce import main, sweep_axes, sweep_command, sweep_jobs
from src.schema import check as check_config

SCALES = names("scale")
FIGURES = names("figure")


def _axes(figure: str, scale: str) -> dict[str, list[str]]:
    """``{key: [values]}`` of a sweep's grid, from the same expansion the runner uses."""
    return {axis[0].split("=")[0]: [o.split("=", 1)[1] for o in axis]
            for axis in sweep_axes(figure, scale)}


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_sweep_composes_at_every_scale(figure, scale):
    axes = _axes(figure, scale)
    assert len(sweep_jobs(figure, scale)) == len(list(itertools.product(*axes.values())))
    assert len(axes["seed"]) >= (2 if scale == "smoke" else 3)
    varied = {k: v for k, v in axes.items() if k != "seed"}
    for values in itertools.product(*varied.values()):  # every benchmark, cell, warm-up
        overrides = {k: v[0] for k, v in axes.items()} | dict(zip(varied, values))
        cfg = compose_config([f"+figure={figure}", f"+scale={scale}",
                              *(f"{k}={v}" for k, v in overrides.items())])
        resolved = OmegaConf.to_container(cfg, resolve=True)  # every size interpolates
        check_config(cfg)
        assert resolved["figure"] == figure


def test_each_scale_runs_ten_seeds_where_it_decides_claims():
    """What docs/results.md says of the scales: claims 1-5 decided on 10 seeds (the verdict
    rules need them: 3 seeds decide nothing); cpu runs the precision sweeps on sequential
    digits only (GRU and LSTM), medium on denoising and sequential digits (GRU), excite on
    the first 5 seeds."""
    ten = [str(s) for s in range(10)]
    for scale in ("cpu", "medium", "paper"):
        assert _axes("precision", scale)["seed"] == ten, scale
        multi = _axes("multistability_curves", scale)
        assert len(multi["cell"]) == 7 and multi["seed"] == ten, scale
        assert _axes("precision_excite", scale)["seed"] == ten[:5], scale
    precision, excite = _axes("precision", "medium"), _axes("precision_excite", "medium")
    assert precision["cell"] == excite["cell"] == ["gru"]
    assert precision["+figure/benchmark"] == ["denoising", "seq_digits"]
    assert excite["+figure/benchmark"] == ["denoising"]
    cfg = compose_config(["+figure=precision", "+scale=medium", "+figure/benchmark=denoising"])
    assert (cfg.benchmark.seq_length, cfg.benchmark.train_size, cfg.trainer.max_epochs) == (
        300, 16000, 7)
    cpu = _axes("precision", "cpu")
    assert cpu["cell"] == ["gru", "lstm"] and cpu["+figure/benchmark"] == ["seq_digits"]
    assert _axes("precision_excite", "cpu")["+figure/benchmark"] == ["seq_digits"]


def test_the_grid_is_the_product_of_the_axes_in_launch_order():
    jobs = sweep_jobs("multistability_curves", "smoke")
    assert jobs[:2] == [["+figure/benchmark=copy", "cell=gru", "warmup=none", "seed=0"],
                        ["+figure/benchmark=copy", "cell=gru", "warmup=none", "seed=1"]]
    assert len(jobs) == len({tuple(j) for j in jobs}) == 1 * 3 * 2  # smoke: gru only


def test_parallel_jobs_use_hydras_joblib_launcher(tmp_path):
    one = sweep_command("precision", "cpu", "sqlite:///x.db", tmp_path, jobs=1)
    two = sweep_command("precision", "cpu", "sqlite:///x.db", tmp_path, jobs=2)
    assert not any("launcher" in a for a in one)
    assert two[len(one):] == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    cfg = compose_config(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], hydra=True)
    assert cfg.hydra.launcher.n_jobs == 2 and "Joblib" in cfg.hydra.launcher._target_


def test_the_slurm_launcher_config_composes_without_a_cluster():
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                          "mlflow.tracking_uri=http://mlflow.example.org:5000"], hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 240)
    assert cfg.mlflow.tracking_uri == "http://mlflow.example.org:5000"


def test_bad_scale_is_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "src.reproduce", "--scale", "nope"], cwd=ROOT,
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: SCALE=nope is not one of {', '.join(SCALES)} (conf/scale/*.yaml)"]


def test_a_launcher_goes_to_every_sweep_and_an_unknown_one_is_refused(tmp_path, capsys):
    """--launcher slurm_cpu and --sweep-arg reach every sweep's command; a launcher that
    conf/hydra/launcher/ lacks is one line, before anything runs."""
    cmd = sweep_command("precision", "cpu", "sqlite:///x.db", tmp_path, jobs=2,
                        launcher="slurm_cpu", extra=["hydra.launcher.partition=debug"])
    assert cmd[-2:] == ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=debug"]
    assert not any("joblib" in a for a in cmd)
    cfg = compose_config(["hydra/launcher=slurm_cpu"], hydra=True)
    assert cfg.hydra.launcher.gpus_per_node == 0 and cfg.hydra.launcher.cpus_per_task == 1
    assert main(["--scale", "smoke", "--launcher", "slurmm"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --launcher slurmm is not one of slurm, slurm_cpu (conf/hydra/launcher/*.yaml)")


# ---------------------------------------------------------- figures on synthetic runs
CELLS = ("gru", "lstm")
LOSS = {"none": [0.5, 0.7, 0.9], "full": [0.1, 0.2, 0.3], "partial": [0.05, 0.05, 0.05],
        "parallel": [0.4, 0.6, 0.8]}
ATTRACTORS = {"none": [3, 5, 7], "full": [30, 31, 32], "partial": [16, 16, 16],
              "parallel": [2, 2, 2]}


def _log_run(client, exp_id, figure, bench, cell, variant, seed, completed=True, loss=None):
    """A run as src/run.py logs it: tags, params, metric histories with their steps."""
    from mlflow.entities import Metric, Param

    warm = variant
    tags = {"cell": cell, "benchmark": bench, "warmup": warm, "seed": str(seed), "figure": figure,
            "config_hash": f"{figure}-{bench}-{cell}-{variant}-{seed}"}
    if completed:
        tags["completed"] = "true"
    run_id = client.create_run(exp_id, run_name=f"{cell}-{variant}-{bench}-s{seed}",
                               tags=tags).info.run_id
    fraction = {"none": 0.0, "full": 1.0, "partial": 0.5, "parallel": 0.5}[variant]
    params = {"net.parallel": "False", "vaa.group_size": "32", "warmup.fraction": str(fraction),
              "warmup.steps": "0" if variant in ("none", "parallel") else "100",
              "warmup.method": "paper"}
    epochs, n_final = 3, ATTRACTORS[variant][seed]
    loss = LOSS[variant][seed] if loss is None else loss
    m = [Metric("attractors", 1.0, 0, 0), Metric("vaa", 1 / 32, 0, 0)]  # init: monostable
    after = 1.0 if variant in ("none", "parallel") else float(n_final)
    m += [Metric("attractors", after, 0, 1), Metric("vaa", after / 32, 0, 1)]
    for e in range(1, epochs + 1):
        m += [Metric("train/loss", loss * (4 - e), 0, e), Metric("val/loss", loss * (4 - e), 0, e),
              Metric("attractors", float(n_final), 0, 1 + e), Metric("vaa", n_final / 32, 0, 1 + e)]
    if warm != "none":
        m += [Metric(k, 0.5, 0, s) for s in range(4) for k in ("warmup/loss", "warmup/vaa_star")]
    m.append(Metric("test/loss", loss, 0, epochs))
    if bench == "seq_digits":
        m.append(Metric("test/acc", 1 - loss, 0, epochs))
    client.log_batch(run_id, metrics=m, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(run_id, "FINISHED" if completed else "FAILED")


@pytest.fixture
def synthetic(store):
    uri, client = store
    exp_id = client.create_experiment("synthetic")
    for cell, variant, seed in itertools.product(CELLS, ("none", "full", "partial"), range(3)):
        _log_run(client, exp_id, "multistability_curves", "copy", cell, variant, seed)
    for bench, cell, variant, seed in itertools.product(("denoising", "seq_digits"), CELLS,
                                                        LOSS, range(3)):
        _log_run(client, exp_id, "precision", bench, cell, variant, seed)
    # the same configuration run twice (two overlapping sweeps): counted once
    _log_run(client, exp_id, "multistability_curves", "copy", "lstm", "full", 0)
    # an interrupted run: never counted
    _log_run(client, exp_id, "multistability_curves", "copy", "gru", "none", 0, completed=False,
             loss=100.0)
    return uri, "synthetic"


def figures_of(uri: str, experiment: str, out) -> list:
    """Every figure and the summary of an experiment's runs, as `python -m src.figures` makes
    them."""
    from src.figures import make_all
    from src.figures.store import load_runs

    return make_all(load_runs(uri, experiment), out, f"experiment `{experiment}`")


def _table(summary: str) -> dict[tuple[str, str, str], dict[str, str]]:
    lines = [line for line in summary.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(header):
            row = dict(zip(header, cells))
            rows[(row["benchmark"], row["cell"], row["warm-up"])] = row
    return rows


def test_figures_and_summary_from_logged_runs(synthetic, tmp_path, capsys):

    uri, experiment = synthetic
    out = tmp_path / "figures"
    files = figures_of(uri, experiment, out)
    for name in ("multistability", "learning_curves", "precision", "vaa_vs_test"):
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000, name
    assert out / "summary.md" in files
    rows = _table((out / "summary.md").read_text())
    assert len(rows) == 2 * 3 + 2 * 2 * 4
    row = rows[("copy", "gru", "none")]  # the interrupted run (loss 100) is left out
    assert (row["seeds"], row["test loss"], row["test acc"]) == ("3", "0.7 ± 0.2", "–")
    assert (row["median"], row["solved"]) == ("0.7", "0/3")  # copy: solved below MSE 0.5
    assert (row["attractors at init"], row["attractors after warm-up"]) == ("1 ± 0", "1 ± 0")
    assert row["attractors final"] == "5 ± 2"
    row = rows[("copy", "lstm", "full")]
    assert (row["seeds"], row["test loss"], row["attractors after warm-up"]) == (
        "3", "0.2 ± 0.1", "31 ± 1")
    row = rows[("seq_digits", "lstm", "parallel")]
    assert (row["test loss"], row["test acc"], row["attractors final"]) == (
        "0.6 ± 0.2", "0.4 ± 0.2", "2 ± 0")
    assert rows[("denoising", "gru", "partial")]["test loss"] == "0.05 ± 0"
    assert rows[("denoising", "gru", "partial")]["solved"] == "3/3"  # below 0.1
    assert rows[("denoising", "gru", "none")]["solved"] == "0/3"
    # seq_digits: solved at test accuracy 0.5 or more (here 1 - loss), the bound included
    assert rows[("seq_digits", "gru", "full")]["solved"] == "3/3"  # 0.9, 0.8, 0.7
    assert rows[("seq_digits", "gru", "none")]["solved"] == "1/3"  # 0.5, 0.3, 0.1
    # more attractors after warm-up, lower loss: a negative rank correlation, printed
    assert "copy: Spearman rho(VAA after warm-up, test loss) = -" in capsys.readouterr().out


def _runs(figure, bench, cell, variant, values, attractors=None):
    """In-memory runs of 10 seeds (``values``: the test loss, or the test accuracy on
    seq_digits; ``attractors`` after warm-up), for the verdicts' rules."""
    from src.figures.runs import AFTER_WARMUP, INIT, Run

    out = []
    for seed, x in enumerate(values):
        after = attractors[seed] if attractors else 1.0
        metrics = {"test/acc": x, "test/loss": 1 - x} if bench == "seq_digits" else {
            "test/loss": x}
        params = {"benchmark.black_pixels": "3"} if bench == "seq_digits" else {}
        out.append(Run(run_id=f"{cell}{variant}{bench}{seed}", name="", figure=figure, cell=cell,
                       benchmark=bench, variant=variant, seed=seed, params=params,
                       metrics=metrics,
                       history={"attractors": [(INIT, 1.0), (AFTER_WARMUP, after)],
                                "vaa": [(INIT, 1 / 32), (AFTER_WARMUP, after / 32)]}))
    return out


def test_the_claims_are_decided_by_their_tests_with_p_values_and_intervals():
    """Each verdict follows its rule (src/figures/inference.py) on 10 seeds: a binomial test
    for claims 1 and 2, Fisher's exact test on solved shares, the sign test on paired seeds,
    a permutation test for the correlation; each statistic carries its p-value and interval."""
    from src.figures import claims

    ten = range(10)
    runs = (_runs("multistability_curves", "copy", "gru", "none", [1.0] * 10)
            + _runs("multistability_curves", "copy", "gru", "full", [0.1] * 9 + [0.9],
                    [30.0] * 9 + [1.0])
            + _runs("multistability_curves", "copy", "gru", "partial", [0.9] * 10, [1.0] * 10)
            + _runs("precision", "seq_digits", "gru", "none", [0.1 + 0.01 * s for s in ten])
            + _runs("precision", "seq_digits", "gru", "full", [0.3 + 0.01 * s for s in ten],
                    [20.0] * 10)
            # partial beats full on 5 of 10 seeds, parallel on 1 of 10
            + _runs("precision", "seq_digits", "gru", "partial",
                    [0.3 + 0.01 * s + (0.05 if s % 2 else -0.05) for s in ten], [10.0] * 10)
            + _runs("precision", "seq_digits", "gru", "parallel",
                    [0.9 if s else 0.0 for s in ten]))
    found = {v.key: v for v in claims.decide(runs)}
    one = found["1 | gru"]
    assert (one.verdict, one.rule, one.data) == ("shown", "share", [10, 10])
    assert one.statistic == ("at most 2 attractors at init; 10/10 seeds; p < 0.001, "
                             "share in [0.74, 1.00]")
    assert found["2 | gru, full"].verdict == "shown"  # 9/10: p = 0.011
    assert found["2 | gru, full"].p == pytest.approx(11 / 1024, abs=1e-6)
    assert found["2 | gru, partial"].verdict == "not shown"  # 0/10: the share is below 1/2
    v = found["3 | copy, gru, full vs none"]
    assert (v.verdict, v.rule, v.data) == ("shown", "solved", [9, 10, 0, 10])
    assert v.statistic.startswith("full solves 9/10 seeds, none 0/10; Fisher p < 0.001; "
                                  "a gain of 0.3 or more: p = 1")
    assert found["3 | copy, gru, partial vs none"].verdict == "not shown"  # 0/10 and 0/10
    v = found["3 | seq_digits, gru, full vs none"]
    assert (v.verdict, v.rule, v.data) == ("shown", "paired", [10, 10])
    assert "full beats none on 10 of 10 seeds (test/acc, solved 0/10 and 0/10); sign test " \
           "p < 0.001" in v.statistic
    assert found["4a | seq_digits, gru, partial vs full"].verdict == "undecided"  # 5 of 10
    assert found["4b | seq_digits, gru, partial vs parallel"].verdict == "not shown"  # 1 of 10
    five = found["5 | copy"]  # more attractors after warm-up, lower loss
    assert five.verdict == "shown" and five.rule == "correlation" and five.data[1] == 30
    assert "permutation p < 0.001" in five.statistic and five.high < 0
    assert not any(k.startswith(("4a | copy", "4b | copy")) for k in found)  # not a precision task


def test_three_seeds_decide_nothing_and_the_files_carry_the_statistics(synthetic, tmp_path):
    """The synthetic store's 3 seeds: a share of 3 cannot reach p = 0.05 (3/3 gives 0.125) and
    3/3 against 0/3 just does (Fisher's p = 1/20); summary.md and verdicts.json carry every
    p-value and interval."""
    import json

    from src.figures import claims

    uri, experiment = synthetic
    out = tmp_path / "figures"
    figures_of(uri, experiment, out)
    _, verdicts = claims.read(out / "verdicts.json")
    found = {v.key: v for v in verdicts}
    assert found["1 | gru"].verdict == "undecided" and found["1 | gru"].p == 0.125
    assert found["3 | copy, gru, full vs none"].verdict == "shown"  # 3/3 against 0/3
    assert found["3 | copy, gru, full vs none"].p == pytest.approx(0.05)
    assert found["3 | copy, gru, partial vs none"].verdict == "shown"
    assert found["3 | denoising, gru, full vs none"].verdict == "undecided"  # 0/3 and 0/3
    assert all(v.p is not None and v.low <= v.high for v in verdicts)
    rules = json.loads((out / "verdicts.json").read_text())["rules"]
    assert rules["alpha"] == 0.05 and 0 < rules["worst_contradiction"] < 0.05
    summary = (out / "summary.md").read_text()
    assert "## The paper's claims, decided" in summary and "Runs made on: not recorded" in summary
    assert ("| 3: warmed-up networks learn long dependencies better | copy, gru, full vs none | "
            "**shown** | full solves 3/3 seeds, none 0/3; Fisher p = 0.05;") in summary
    assert "contradict each other (shown against not shown) on one of these verdicts" in summary


@pytest.mark.parametrize("k,n,verdict", [(10, 10, "shown"), (9, 10, "shown"), (8, 10, "undecided"),
                                         (2, 10, "undecided"), (1, 10, "not shown"),
                                         (3, 3, "undecided"), (0, 3, "undecided"),
                                         (5, 5, "shown"), (0, 5, "not shown")])
def test_the_share_rule_is_a_binomial_test_of_one_half(k, n, verdict):
    from src.figures.inference import Share

    assert Share(n).decide(k).verdict == verdict


@pytest.mark.parametrize("ka,kb,verdict", [(4, 0, "shown"), (3, 0, "undecided"),
                                           (7, 1, "shown"), (5, 1, "undecided"),
                                           (0, 0, "not shown"), (1, 0, "undecided"),
                                           (3, 7, "not shown"), (5, 5, "undecided")])
def test_the_solved_rule_is_fishers_test_and_an_exact_margin_test(ka, kb, verdict):
    from src.figures.inference import Solved

    assert Solved(10, 10).decide(ka, kb).verdict == verdict


@pytest.mark.parametrize("wins,n,verdict", [(9, 10, "shown"), (8, 10, "undecided"),
                                            (5, 10, "undecided"), (4, 10, "not shown"),
                                            (0, 10, "not shown"), (5, 5, "shown")])
def test_the_paired_rule_is_the_sign_test(wins, n, verdict):
    from src.figures.inference import Paired

    assert Paired(n).decide(wins).verdict == verdict


def test_the_correlation_rule_is_a_permutation_test_and_a_bound():
    import numpy as np

    from src.figures.inference import Correlation

    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    assert Correlation(60).decide(x, -x + 0.5 * rng.normal(size=60)).verdict == "shown"
    assert Correlation(60).decide(x, x + 0.5 * rng.normal(size=60)).verdict == "not shown"
    assert Correlation(10).decide(x[:10], rng.normal(size=10)).verdict == "undecided"
    same = Correlation(60).decide(x, -x)
    assert same.p == Correlation(60).decide(x, -x).p < 0.001  # seeded permutations


def test_the_rules_keep_their_stated_error_rates():
    """Exact (binomial) error rates at 10 seeds a side: "shown" when there is no effect, and
    "not shown" when the effect is at the margin, each at most ALPHA (Fisher's test and the
    exact margin test are conservative); two machines contradict each other with a chance
    of at most 3 % for any true effect, as docs/results.md states."""
    from src.figures.inference import (ALPHA, PAIRED_MARGIN, SOLVED_MARGIN, Correlation,
                                       Paired, Share, Solved)

    solved = Solved(10, 10)
    for pb in (0.0, 0.1, 0.3, 0.5, 0.7):
        assert solved.chances(pb, pb)[0] <= ALPHA  # no gain: shown at most ALPHA
        if pb + SOLVED_MARGIN <= 1:
            assert solved.chances(pb + SOLVED_MARGIN, pb)[1] <= ALPHA
    share, paired = Share(10), Paired(10)
    assert share.chances(0.5)[0] <= ALPHA and share.chances(0.5)[1] <= ALPHA
    assert paired.chances(0.5)[0] <= ALPHA and paired.chances(PAIRED_MARGIN)[1] <= ALPHA
    worst = {r: r.worst() for r in (share, paired, solved, Correlation(80))}
    assert all(0 < w <= 0.03 for w in worst.values()), worst
    # a share of three seeds decides nothing, so it can never contradict
    assert Share(3).worst() == 0 and Solved(3, 3).worst() < 0.005


def test_check_tells_a_contradiction_from_a_difference_in_certainty(synthetic, tmp_path,
                                                                    monkeypatch, capsys):
    """--check on a fixed store: the same verdicts agree (0); a reference verdict turned
    from undecided to shown differs in certainty (reported, 0); a verdict shown against not
    shown is a contradiction (1, named); a reference verdict without runs here fails (1)."""
    from dataclasses import replace

    from src import reproduce
    from src.figures import claims
    from src.figures.store import load_runs

    uri, experiment = synthetic
    mine = claims.decide(load_runs(uri, experiment))
    ref = tmp_path / "verdicts-smoke.json"
    monkeypatch.setattr(reproduce, "reference", lambda scale: ref)
    claims.write(mine, "the reference machine", ref)
    assert reproduce.check(uri, experiment, "smoke") == 0
    out = capsys.readouterr().out
    assert f"{len(mine)} agree, 0 contradict" in out and "reference: the reference machine" in out
    assert "two fresh draws would give about" in out
    assert mine[0].verdict == "undecided"
    claims.write([replace(mine[0], verdict="shown"), *mine[1:]], "the reference machine", ref)
    assert reproduce.check(uri, experiment, "smoke") == 0
    out = capsys.readouterr().out
    assert f"certainty     {mine[0].key}: here undecided" in out
    assert "1 differ in certainty" in out and "[chance: contradiction " in out

    # a contradiction: decided one way here, the other way in the reference
    flipped = [replace(mine[0], verdict="shown"), *mine[1:]]
    here = [replace(mine[0], verdict="not shown"), *mine[1:]]
    monkeypatch.setattr(claims, "decide", lambda runs: here)
    claims.write(flipped, "the reference machine", ref)
    assert reproduce.check(uri, experiment, "smoke") == 1
    captured = capsys.readouterr()
    assert f"CONTRADICTION {mine[0].key}: here not shown" in captured.out
    assert "1 contradict" in captured.out and "error: contradictions" in captured.err
    monkeypatch.setattr(claims, "decide", lambda runs: mine[1:])
    claims.write(mine, "the reference machine", ref)
    assert reproduce.check(uri, experiment, "smoke") == 1
    assert "1 not decided here" in capsys.readouterr().out
    assert reproduce.check(uri, "missing", "smoke") == 2
    assert "no completed runs" in capsys.readouterr().err


def test_the_tmaze_figure_and_table_count_solved_seeds_and_censor_the_rest(store, tmp_path):
    """Episodes to solve per (cell, warm-up, L): the median counts a seed that never solved
    as solved one evaluation after the budget, as src/pipeline.py logs it."""
    from mlflow.entities import Metric, Param


    uri, client = store
    exp_id = client.create_experiment("rl")
    solved_at = {("none", 10): [60, None, None], ("partial", 10): [20, 40, 40],
                 ("none", 20): [None, None, None], ("partial", 20): [100, 80, None]}
    for (variant, length), seeds in solved_at.items():
        for seed, episode in enumerate(seeds):
            tags = {"cell": "gru", "benchmark": "tmaze", "warmup": variant, "seed": str(seed),
                    "figure": "tmaze", "completed": "true",
                    "config_hash": f"{variant}-{length}-{seed}"}
            run_id = client.create_run(exp_id, tags=tags).info.run_id
            params = {"warmup.fraction": "0.5" if variant == "partial" else "0.0",
                      "warmup.steps": "100", "net.parallel": "False", "vaa.group_size": "32",
                      "benchmark.length": str(length), "benchmark.episodes": "300"}
            last = 320 if episode is None else episode
            metrics = [Metric("episodes_to_solve", float(last), 0, last),
                       Metric("solved", float(episode is not None), 0, last),
                       Metric("eval/return", 4.0 if episode else 0.0, 0, last),
                       Metric("vaa", 1 / 32, 0, 0)]
            client.log_batch(run_id, metrics=metrics,
                             params=[Param(k, v) for k, v in params.items()])
            client.set_terminated(run_id, "FINISHED")
    out = tmp_path / "figures"
    figures_of(uri, "rl", out)
    assert (out / "tmaze.png").stat().st_size > 1000 and (out / "tmaze.pdf").exists()
    summary = (out / "summary.md").read_text()
    assert "| gru | none | 1/3, 320 | 0/3, 320 |" in summary
    assert "| gru | partial | 3/3, 40 | 2/3, 100 |" in summary
    assert "| tmaze |" not in summary  # not in the supervised table


def test_the_memory_horizon_figure_and_table_per_length(store, tmp_path):
    """Test MSE per (cell, warm-up, L): the median and the seeds below 0.5; these runs stay
    out of the supervised table and of figure 4's correlation (their length varies)."""
    from mlflow.entities import Metric, Param

    from src.figures.vaa_vs_test import correlations

    uri, client = store
    exp_id = client.create_experiment("horizon")
    losses = {("none", 50): [0.2, 0.9, 1.0], ("none", 200): [1.0, 1.1, 1.0],
              ("full", 50): [0.1, 0.2, 0.3], ("full", 200): [0.4, 0.9, 0.3]}
    for (variant, length), seeds in losses.items():
        for seed, loss in enumerate(seeds):
            tags = {"cell": "lstm", "benchmark": "copy", "warmup": variant, "seed": str(seed),
                    "figure": "memory_horizon", "completed": "true",
                    "config_hash": f"{variant}-{length}-{seed}"}
            run_id = client.create_run(exp_id, tags=tags).info.run_id
            params = {"warmup.fraction": "1.0" if variant == "full" else "0.0",
                      "warmup.steps": "100", "net.parallel": "False", "vaa.group_size": "32",
                      "benchmark.seq_length": str(length)}
            metrics = [Metric("test/loss", loss, 0, 4), Metric("vaa", 1 / 32, 0, 1)]
            client.log_batch(run_id, metrics=metrics,
                             params=[Param(k, v) for k, v in params.items()])
            client.set_terminated(run_id, "FINISHED")
    out = tmp_path / "figures"
    figures_of(uri, "horizon", out)
    assert (out / "memory_horizon.png").stat().st_size > 1000
    summary = (out / "summary.md").read_text()
    assert "| lstm | none | 0.900 (1/3) | 1.000 (0/3) |" in summary
    assert "| lstm | full | 0.200 (3/3) | 0.400 (2/3) |" in summary
    assert "| copy |" not in summary
    from src.figures.store import load_runs

    assert correlations(load_runs(uri, "horizon")) == {}


@pytest.mark.parametrize(("tags", "params", "expected"), [
    ({"warmup": "partial"}, {"warmup.fraction": "0.5", "warmup.steps": "100"}, "partial"),
    ({"warmup": "partial"}, {"warmup.fraction": "0.25", "warmup.steps": "100"}, "partial-0.25"),
    ({"warmup": "full"}, {"warmup.fraction": "1.0", "warmup.steps": "100",
                          "warmup.method": "robust"}, "full-robust"),
    ({"warmup": "partial"}, {"warmup.fraction": "0.5", "warmup.steps": "100",
                             "warmup.method": "excite"}, "partial-excite"),
    ({"warmup": "parallel"}, {"warmup.fraction": "0.5", "warmup.steps": "0"}, "parallel"),
    ({"warmup": "none"}, {"warmup.fraction": "0.0", "net.parallel": "True"}, "parallel"),
    ({"warmup": "none"}, {"warmup.fraction": "0.0", "warmup.steps": "100"}, "none"),
    ({"warmup": "partial"}, {"warmup.fraction": "0.5", "warmup.steps": "0"}, "parallel"),
    ({"warmup": "parallel"}, {"warmup.fraction": "0.5", "warmup.steps": "4",
                              "warmup.active": "False"}, "parallel"),  # a scale set the steps
    ({"warmup": "none"}, {"net.parallel": "True"}, "parallel"),  # no warm-up params logged
])
def test_the_variant_comes_from_the_logged_params_not_the_name(tags, params, expected):
    from src.figures.runs import variant

    assert variant(tags, params) == expected


def test_the_figures_cells_are_read_from_conf_cell(tmp_path):
    from src.figures.runs import CELLS, cells

    assert CELLS == cells() and set(CELLS) == set(names("cell"))
    for name in ("rnn", "leaky", "gru", "abc"):
        (tmp_path / f"{name}.yaml").write_text("_target_: x\n")
    assert cells(tmp_path) == ("gru", "rnn", "abc", "leaky")  # the paper's order, then by name


def test_figures_on_an_empty_experiment_say_so(store, tmp_path, capsys):
    from src.figures import make_all
    from src.figures.cli import cli

    uri, _ = store
    cli(make_all, "every figure", ["--tracking-uri", uri, "--experiment", "missing", "--out",
                                   str(tmp_path / "figures")], titled=True)
    assert "no completed runs in experiment 'missing'" in capsys.readouterr().out
    assert not (tmp_path / "figures").exists()
    assert make_all([], tmp_path) == []
    assert "nothing drawn" in capsys.readouterr().out


# ------------------------------------------------------------------ the smoke chain
# About 80 s on two quiet cores (both invocations), in the default run.
def test_smoke_reproduce_builds_everything_and_resumes(tmp_path, store, capsys):
    uri, client = store
    cmd = [sys.executable, "-m", "src.reproduce", "--scale", "smoke", "--jobs", "1", "--threads", "1",
           "--tracking-uri", uri, "--out", str(tmp_path / "figures"),
           "--work-dir", str(tmp_path / "work")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True,
                           timeout=1800)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = tmp_path / "figures"
    for name in ("multistability", "attractors", "learning_curves", "precision", "vaa_vs_test",
                 "memory_horizon", "tmaze"):
        assert (out / f"{name}.png").exists() and (out / f"{name}.pdf").exists(), name
    rows = _table((out / "summary.md").read_text())
    cells = {c for f in FIGURES for c in _axes(f, "smoke")["cell"]}
    assert {cell for _, cell, _ in rows} == cells
    exp = client.get_experiment_by_name("reproduce-smoke")
    runs = client.search_runs([exp.experiment_id])
    total = sum(len(sweep_jobs(f, "smoke")) for f in FIGURES)
    assert len(runs) == total + 1  # every job, and the summary run with the figures
    (summary,) = [r for r in runs if r.data.tags.get("figure") == "summary"]
    logged = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert {"summary.md", "verdicts.json", "precision.png", "precision.pdf"} <= logged
    # every run says where it ran; the verdicts carry it
    assert all(r.data.tags.get("machine", "").count(" cores (") == 1 for r in runs
               if r.data.tags.get("figure") != "summary")
    assert "Runs made on: " in (out / "summary.md").read_text()

    capsys.readouterr()
    assert main(cmd[3:]) == 0  # again, in-process: everything is found complete
    again = capsys.readouterr().out
    assert again.count("jobs complete, reused") == len(FIGURES)  # nothing launched
    assert len(client.search_runs([exp.experiment_id])) == total + 1
    # progress lines as the jobs end (a Hydra callback): one per job, each naming its run
    assert first.stdout.count(f"/{total}] ") == total
    assert "] precision  gru-parallel-copy" not in first.stdout  # named by their benchmark
    assert "] precision  gru-parallel-" in first.stdout
    assert f"[{total}/{total}] tmaze  gru-partial-tmaze3-s1" in first.stdout  # the last job

    assert main(["--scale", "smoke", "--plan", "--tracking-uri", uri]) == 0
    plan = capsys.readouterr().out
    assert f"{total} jobs, {total} already complete" in plan and "~0 min of sweeps" in plan

    # against the committed reference: the tiny smoke runs may differ in a verdict between
    # CPUs, so the report is checked, not the agreement
    assert main(["--scale", "smoke", "--check", "--tracking-uri", uri]) in (0, 1)
    report = capsys.readouterr().out
    assert "reference verdicts" in report and "  here:      " in report


def test_bars_and_whiskers_stay_inside_the_range_of_their_quantity():
    """A share of settled states is in [0, 1]: the bar is the median, the whiskers span the
    seeds, so neither leaves [0, 1] (mean ± std would: 0.9, 1, 1 gives 1.03)."""
    import matplotlib.pyplot as plt

    from src.figures.plots import grouped_bars

    fig, ax = plt.subplots()
    values = {("gru", "none"): [0.9, 1.0, 1.0], ("gru", "full"): [0.0, 0.02, 0.5]}
    grouped_bars(ax, ["gru"], ["none", "full"], values)
    from matplotlib.container import BarContainer

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    ys = [y for c in bars for seg in c.errorbar.lines[2][0].get_segments() for _, y in seg]
    heights = [bar.get_height() for c in bars for bar in c]
    plt.close(fig)
    assert sorted(heights) == [0.02, 1.0]  # the medians
    assert min(ys) == 0.0 and max(ys) == 1.0 and len(ys) == 4


def test_claim_one_is_about_standard_cells_only():
    """BRC and nBRC are bistable by construction: many attractors at init is their design, not
    evidence against claim 1, which they are left out of; a standard cell is decided."""
    from src.figures.claims import monostable
    from src.figures.runs import INIT, Run

    def run(cell, seed, attractors):
        return Run(run_id=f"{cell}{seed}", name="", figure="multistability_curves", cell=cell,
                   benchmark="copy", variant="none", seed=seed, params={}, metrics={},
                   history={"attractors": [(INIT, attractors)]})

    runs = [run("brc", s, 20.0) for s in range(10)] + [run("gru", s, 1.0) for s in range(10)]
    assert [(v.subject, v.verdict) for v in monostable(runs)] == [("gru", "shown")]


def test_plan_counts_each_job_at_the_time_of_its_kind():
    """``--plan``: a job left counts the mean time of the finished jobs of its sweep with its
    benchmark and cell, else of the whole sweep, else the scale's measured hint."""
    from src.reproduce import job_key, plan_seconds

    job = ["+figure/benchmark=denoising", "cell=gru", "warmup=full", "seed=3"]
    assert job_key(job) == {"benchmark": "denoising", "cell": "gru"}
    assert job_key(["cell=lstm", "seed=0"]) == {"cell": "lstm"}
    finished = [({"benchmark": "denoising", "cell": "gru"}, 200.0),
                ({"benchmark": "denoising", "cell": "gru"}, 100.0),
                ({"benchmark": "seq_digits", "cell": "gru"}, 30.0)]
    digits_lstm = ["+figure/benchmark=seq_digits", "cell=lstm", "seed=0"]
    seconds, where = plan_seconds([job, job, digits_lstm], finished, hint=9.0)
    assert seconds == 150.0 + 150.0 + (200.0 + 100.0 + 30.0) / 3  # the last: no lstm finished
    assert "3 finished" in where
    assert plan_seconds([job, job], [], hint=9.0) == (18.0, "the scale's measured mean")
    assert plan_seconds([job], [], hint=None) == (None, "no estimate")
    assert plan_seconds([], finished, hint=None) == (0.0, "")


def test_progress_time_left_follows_the_plan_of_the_jobs_left(monkeypatch, capsys):
    """The progress line's time left is the plan of the jobs not yet finished (slow sweeps
    count as slow before any of their jobs ran), corrected by how the plan fared so far; with
    no plan it extrapolates the jobs finished."""
    import src.reproduce as rp

    clock = [1000.0]
    monkeypatch.setattr(rp.time, "time", lambda: clock[0])
    # 2 fast jobs (10 s each at the jobs run at once) then 3 slow ones (100 s each)
    progress = rp.Progress(5, 0, {"fast": (2, 20.0), "slow": (3, 300.0)})
    assert progress.left_seconds() == 320.0
    clock[0] += 10.0
    progress.line("fast", "job-done: a 10 s test/loss 0.5\n")
    assert progress.left_seconds() == 310.0  # on plan: the ratio is 1
    clock[0] += 10.0 + 2 * 100.0  # the rest of the plan so far, 100 s late
    progress.line("fast", "job-done: b 10 s test/loss 0.5\n")
    progress.line("slow", "job-done: c 200 s test/loss 0.5\n")
    ratio = (220.0 + rp.Progress.SHRINK_S) / (120.0 + rp.Progress.SHRINK_S)
    assert progress.left_seconds() == pytest.approx(ratio * 200.0)
    assert "[3/5] slow  c" in capsys.readouterr().out
    assert progress.eta() == f"  (~{ratio * 200.0 / 60:.0f} min left)"

    unplanned = rp.Progress(5, 1)
    assert unplanned.left_seconds() is None and unplanned.eta() == ""
    clock[0] += 60.0
    unplanned.line("x", "job-done: d 60 s test/loss 0.5\n")
    assert unplanned.left_seconds() == 3 * 60.0
    unplanned.line("x", "job-reused: e\n")  # a reused run is not a finished job
    assert unplanned.done == 2
