"""The library calls (src/api.py): warm-up and VAA for anyone's recurrent module."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from src import measure_vaa, warm_up
from src.api import _prepare
from src.cells import GRU, LSTM
from src.rnn import StackedRNN
from src.vaa import measure_vaa as project_measure

from conftest import ROOT


class Wrapped(nn.Module):
    """A user's module of the ``(x, h0) -> (y, h_n)`` shape that is not a torch RNN."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0=None):
        return self.rnn(x, h0)


def test_readme_example_runs_as_written(capsys, monkeypatch):
    """The README's lines, executed verbatim at a tiny size (10 warm-up steps instead of 100);
    before warm-up the GRU is monostable."""
    import functools

    import src

    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- library-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    monkeypatch.setattr(src, "warm_up", functools.partial(src.warm_up, steps=10))
    torch.manual_seed(0)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Multistability(vaa=0.03125, attractors=1.0")
    assert lines[1].startswith("Multistability(vaa=")


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM, nn.RNN])
def test_layers_run_one_at_a_time_match_the_module(kind):
    """The per-layer view (each layer a one-layer module on its own parameters) is the module."""
    torch.manual_seed(0)
    module = kind(3, 8, num_layers=3)
    x = torch.randn(12, 5, 3)
    net, xt = _prepare(module, x, None, "test")
    y_ref, h_ref = module(x)
    y, states = net.recurrent(xt)
    torch.testing.assert_close(y, y_ref)
    h = torch.stack([s[0][0] for s in states])
    torch.testing.assert_close(h, h_ref[0] if kind is nn.LSTM else h_ref)
    if kind is nn.LSTM:
        torch.testing.assert_close(torch.stack([s[0][1] for s in states]), h_ref[1])


def test_prefix_states_are_each_samples_own():
    """Packed prefixes give layer l's state after sample i's own prefix, for every layer."""
    torch.manual_seed(1)
    module = nn.LSTM(2, 6, num_layers=2)
    x = torch.randn(9, 4, 2)
    lengths = torch.tensor([9, 1, 5, 3])
    net, xt = _prepare(module, x, None, "test")
    _, states = net.recurrent(xt, lengths=lengths)
    for i, c in enumerate(lengths.tolist()):
        _, (h, cell) = module(x[:c, i : i + 1])
        for layer in range(2):
            torch.testing.assert_close(states[layer][0][0][i], h[layer, 0])
            torch.testing.assert_close(states[layer][0][1][i], cell[layer, 0])


def test_measure_vaa_agrees_across_the_accepted_kinds():
    """batch_first either way, a wrapped module, and a project network: the same measure."""
    torch.manual_seed(2)
    tm = nn.GRU(3, 8)
    bf = nn.GRU(3, 8, batch_first=True)
    bf.load_state_dict(tm.state_dict())
    x = torch.randn(20, 32, 3)
    ref = measure_vaa(tm, x, steps=300)
    assert measure_vaa(bf, x.transpose(0, 1), steps=300) == ref
    wrapped = measure_vaa(Wrapped(tm), x, steps=300)
    assert wrapped.vaa == pytest.approx(ref.vaa) and wrapped.settled == pytest.approx(ref.settled)

    net = StackedRNN(GRU, 3, 8, 2, 1, warm_fraction=0.5)
    assert measure_vaa(net, x, steps=300) == project_measure(net, x, steps=300, group_size=32)


def test_warm_up_changes_only_the_modules_own_parameters():
    torch.manual_seed(3)
    model = nn.ModuleDict({"rnn": nn.GRU(3, 8, num_layers=2), "head": nn.Linear(8, 2)})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = warm_up(model["rnn"], torch.randn(20, 16, 3), method="paper", steps=5)
    assert len(history) == 5 and all(0 < v <= 1 for v in history)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("head."))
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith("rnn."))
    assert all(p.grad is None for p in model.parameters())

    # a project network: only the warmed sub-cells move (partial warm-up)
    net = StackedRNN(LSTM, 3, 8, 2, 2, warm_fraction=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    warm_up(net, torch.randn(20, 16, 3), method="paper", steps=5)
    for k, v in net.state_dict().items():
        assert torch.equal(before[k], v) != (".warm." in k), k
    assert all(p.requires_grad for p in net.parameters())


def test_warm_up_is_reproducible_and_leaves_the_global_rng_alone():
    x = torch.randn(20, 16, 3)
    results = []
    for _ in range(2):
        torch.manual_seed(4)
        module = nn.LSTM(3, 8)
        state = torch.random.get_rng_state()
        history = warm_up(module, x, method="paper", steps=4, seed=7)
        assert torch.equal(torch.random.get_rng_state(), state)
        results.append((history, module.weight_hh_l0.detach().clone()))
    assert results[0][0] == results[1][0] and torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("call", [warm_up, measure_vaa])
@pytest.mark.parametrize(("inputs", "module", "message"), [
    (torch.randn(10, 3), nn.GRU(3, 8), "must be 3-D"),
    (torch.randn(10, 1, 3), nn.GRU(3, 8), "at least 2, got a batch of 1"),
    (torch.randn(1, 10, 3), nn.GRU(3, 8, batch_first=True), "at least 2, got a batch of 1"),
    (torch.randn(0, 4, 3), nn.GRU(3, 8), "inputs are empty"),
    (torch.randn(10, 4, 5), nn.GRU(3, 8), "5 features but the module expects input_size=3"),
    (torch.randint(0, 3, (10, 4, 3)), nn.GRU(3, 8), "must be floating point"),
    (torch.randn(10, 4, 3), nn.GRU(3, 8, bidirectional=True), "bidirectional"),
    ([[1.0]], nn.GRU(3, 8), "must be a torch.Tensor"),
])
def test_bad_arguments_get_one_clear_value_error(call, inputs, module, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        call(module, inputs)
    assert "\n" not in str(err.value) and str(err.value).startswith(call.__name__)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": -1}, "steps=-1"), ({"lr": 0.0}, "lr=0.0"), ({"batch_size": 1}, "batch_size=1"),
    ({"vaa_target": 1.5}, "vaa_target=1.5"),
])
def test_bad_warm_up_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        warm_up(nn.GRU(3, 8), torch.randn(10, 4, 3), method="paper", **kwargs)


def test_warm_up_runs_the_papers_method_by_default():
    """``warm_up(nn.LSTM(...), inputs)`` takes the paper's gradient steps (VAA* per step
    returned), the same as ``method="paper"``; ``method="excite"`` runs the construction."""
    x = torch.randn(20, 16, 3, generator=torch.Generator().manual_seed(0))
    runs = []
    for kwargs in ({}, {"method": "paper"}):
        torch.manual_seed(0)
        lstm = nn.LSTM(3, 8, num_layers=2)
        runs.append((warm_up(lstm, x, steps=5, **kwargs), lstm.state_dict()))
    (default, weights), (paper, paper_weights) = runs
    assert isinstance(default, list) and len(default) == 5 and default == paper
    assert all(torch.equal(v, paper_weights[k]) for k, v in weights.items())
    torch.manual_seed(0)
    chosen = warm_up(nn.LSTM(3, 8, num_layers=2), x, method="excite", gains=(3.0,),
                     select_steps=30)
    assert len(chosen.gains) == 2


def test_the_papers_warm_up_makes_torch_gru_and_lstm_multistable():
    """Claims 1 and 2 through the library, as rates over seeds, each module its own.

    2 x 16 ``nn.GRU`` and ``nn.LSTM``, 64 random sequences of length 40, 60 warm-up steps,
    VAA over the 200 steps warm-up trains on, one thread. Measured (seeds 0-29): untouched,
    every module is monostable (1 attractor, 60/60); after warm-up at least 4 of 32 attractors
    in 27/30 GRUs and 12/30 LSTMs. The GRU's bound (2 of 10 seeds) is missed with probability
    below 1e-3 at its rate's 99 % lower bound (0.70); the LSTM's rate is too low for a cheap
    bound here, and its warm-up is tested per cell through the pipeline
    (tests/test_multistability.py). Monostable: 3 seeds of each, every one asked.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for kind in (nn.GRU, nn.LSTM):
            for seed in range(3):
                torch.manual_seed(seed)
                x = torch.randn(40, 64, 3)
                assert measure_vaa(kind(3, 16, num_layers=2), x, steps=200).attractors <= 2
        multistable = 0
        for seed in range(10):
            torch.manual_seed(seed)
            module = nn.GRU(3, 16, num_layers=2)
            x = torch.randn(40, 64, 3)
            warm_up(module, x, method="paper", steps=60, seed=seed)
            multistable += measure_vaa(module, x, steps=200).attractors >= 4
    finally:
        torch.set_num_threads(threads)
    assert multistable >= 2, f"GRU multistable after warm-up in {multistable}/10 seeds"


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
def test_excite_changes_only_each_layers_candidate_block_of_a_torch_module(kind):
    """gain * I on the rows of ``weight_hh_l{k}`` that feed the candidate (RNN: all, GRU: n,
    LSTM: g), the same rows of the biases zeroed when ``centre``; nothing else."""
    from src.api import _torch_adapter
    from src.warmup import excite

    torch.manual_seed(0)
    module = kind(3, 8, num_layers=2)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    excite(_torch_adapter(module), (3.0, 5.0), centre=True)
    first, last = {nn.RNN: (0, 1), nn.GRU: (2, 3), nn.LSTM: (2, 3)}[kind]
    rows = slice(first * 8, last * 8)
    for k, v in module.state_dict().items():
        expected = before[k].clone()
        if k.startswith("weight_hh"):
            expected[rows] += (3.0, 5.0)[int(k[-1])] * torch.eye(8)
        if k.startswith("bias"):
            expected[rows] = 0
        torch.testing.assert_close(v, expected, rtol=0, atol=0)
    # warm_up leaves the module as the candidate it reports
    module.load_state_dict(before)
    chosen = warm_up(module, torch.randn(20, 16, 3), method="excite", gains=(3.0,),
                     select_steps=50)
    assert [(g, c) for g, c, *_ in chosen.tried][:3] == [((0.0, 0.0), False), ((3.0, 3.0), False),
                                                        ((3.0, 3.0), True)]
    rebuilt = kind(3, 8, num_layers=2)
    rebuilt.load_state_dict(before)
    excite(_torch_adapter(rebuilt), chosen.gains, chosen.centre)
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in module.state_dict().items())
    assert all(p.grad is None for p in module.parameters())
    # torch's gated layers halve the loop like the project's: the default ladder starts at 3
    from src.warmup import default_gains
    assert default_gains(_torch_adapter(module))[0] == (1.5 if kind is nn.RNN else 3.0)


def test_a_subclass_of_a_torch_rnn_is_measured_and_excited():
    class MyGRU(nn.GRU):
        pass

    torch.manual_seed(0)
    module, x = MyGRU(3, 8), torch.randn(20, 16, 3)
    assert measure_vaa(module, x, steps=50).vaa > 0
    assert len(warm_up(module, x, method="excite", gains=(3.0,), select_steps=50).gains) == 1


@pytest.mark.parametrize(("module", "kwargs", "message"), [
    (Wrapped(nn.GRU(3, 8)), {}, "the layers of a Wrapped are out of reach"),
    (nn.RNN(3, 8, nonlinearity="relu"), {}, "nonlinearity='tanh'"),
    (nn.GRU(3, 8), {"gains": ()}, "gains=()"),
    (nn.GRU(3, 8), {"select_steps": 0}, "select_steps=0"),
    (nn.GRU(3, 8), {"method": "fast"}, "method='fast' must be 'paper' or 'excite'"),
    (nn.GRU(3, 8), {"steps": 60, "lr": 0.1}, "steps, lr set for method='excite'"),
    (StackedRNN(GRU, 3, 8, 1, 1, warm_fraction=0.0), {}, "nothing to warm up"),
])
def test_excite_refusals(module, kwargs, message):
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(ValueError, match=re.escape(message)):
        warm_up(module, torch.randn(10, 4, 3), **{"method": "excite", **kwargs})
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_excite_gives_torch_gru_and_lstm_true_attractors():
    """excite through the library, as a rate over seeds: 2 x 16 ``nn.GRU`` and
    ``nn.LSTM``, 64 random sequences of length 40, measured at T = 10 000 (the measure's own
    T). Success: VAA >= 0.5 with >= 90 % of the final states settled. Measured (1 thread,
    seeds 0-11): GRU 12/12, LSTM 12/12. The bound (at least 4 of 6) fails with probability
    below 2.3e-3 when p >= 0.95."""
    successes = 0
    for kind in (nn.GRU, nn.LSTM):
        for seed in range(3):
            torch.manual_seed(seed)
            module = kind(3, 16, num_layers=2)
            x = torch.randn(40, 64, 3)
            warm_up(module, x, method="excite", seed=seed)
            m = measure_vaa(module, x)
            successes += m.vaa >= 0.5 and m.settled >= 0.9
    assert successes >= 4, f"true attractors in {successes}/6 runs"


def test_the_library_imports_no_framework():
    """``from src import warm_up, measure_vaa`` in a fresh interpreter imports no Lightning,
    Hydra, OmegaConf or MLflow: the library is light (the Lightning stage is imported by the
    pipeline only)."""
    import subprocess
    import sys

    code = ("import sys; from src import warm_up, measure_vaa; "
            "print(sorted(m for m in ('hydra', 'mlflow', 'omegaconf', 'pytorch_lightning', "
            "'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
