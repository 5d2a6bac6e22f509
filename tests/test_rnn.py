"""The stacked network's warmed/plain split, and what warm-up may change."""

import copy

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.cells.gru import GRU
from src.cells.lstm import LSTM
from src.rnn import StackedRNN, split_sizes
from src.warmup import WarmupModule


@pytest.mark.parametrize(
    "hidden,fraction,parallel,expected",
    [(32, 0.5, False, (16, 16)), (32, 1.0, False, (32, 0)), (32, 0.0, False, (0, 32)),
     (32, 0.0, True, (16, 16)), (32, 0.25, False, (8, 24)), (5, 0.5, False, (3, 2)),
     (10, 0.25, True, (3, 7))],
)
def test_split_sizes(hidden, fraction, parallel, expected):
    assert split_sizes(hidden, fraction, parallel) == expected


@pytest.mark.parametrize("hidden,fraction,parallel,match", [
    (32, 1.5, False, "warmup.fraction"), (32, 1.0, True, "net.parallel"),
    (4, 0.05, False, "leaves one part empty"),
])
def test_split_sizes_refuses_impossible_splits(hidden, fraction, parallel, match):
    with pytest.raises(ValueError, match=match):
        split_sizes(hidden, fraction, parallel)


def test_partial_layer_is_two_cells_side_by_side():
    torch.manual_seed(0)
    net = StackedRNN(GRU, input_size=3, hidden_size=8, num_layers=2, output_size=2,
                     warm_fraction=0.5)
    x = torch.randn(6, 4, 3)
    y, states = net(x)
    assert y.shape == (6, 4, 2) and len(states) == 2
    layer = net.layers[0]
    assert layer.warm.hidden_size == 4 and layer.plain.hidden_size == 4
    # the layer's output is exactly the two cells' outputs concatenated, same input to both
    h_warm, _ = layer.warm(x)
    h_plain, _ = layer.plain(x)
    h, _ = layer(x)
    assert torch.equal(h, torch.cat([h_warm, h_plain], -1))
    # the second layer sees the first layer's whole output
    assert net.layers[1].warm.input_size == 8


def test_no_warmup_and_ablation_structures():
    plain = StackedRNN(GRU, 1, 8, 2, 1, warm_fraction=0.0)
    assert not plain.warms_up and plain.layers[0].warm is None and plain.warm_parameters() == []
    ablation = StackedRNN(GRU, 1, 8, 2, 1, warm_fraction=0.0, parallel=True)
    assert not ablation.warms_up  # the parallel structure, nothing warmed
    assert ablation.layers[0].warm.hidden_size == 4 and ablation.layers[0].plain.hidden_size == 4


def _warm_up(net, steps=6):
    data = DataLoader(TensorDataset(torch.randn(64, 20, 1)), batch_size=16,
                      collate_fn=lambda b: (torch.stack([s[0] for s in b]).transpose(0, 1),))
    module = WarmupModule(net, lr=1e-2)
    pl.Trainer(max_steps=steps, max_epochs=-1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False,
               limit_val_batches=0).fit(module, data)
    return module


@pytest.mark.parametrize("cell", [GRU, LSTM])
def test_warmup_updates_only_the_warmed_subcells(cell):
    """The authors' code lets gradients reach lower layers' plain halves through the prefix
    runs; here the plain sub-cells and the read-out are frozen for the whole stage."""
    torch.manual_seed(0)
    net = StackedRNN(cell, 1, 8, num_layers=3, output_size=1, warm_fraction=0.5)
    before = copy.deepcopy(net.state_dict())
    _warm_up(net)
    after = net.state_dict()
    warm_names = {n for n, _ in net.named_parameters() if ".warm." in n}
    assert warm_names
    for name, value in after.items():
        if name in warm_names:
            assert not torch.equal(value, before[name]), f"{name} was not warmed"
        else:
            assert torch.equal(value, before[name]), f"{name} changed during warm-up"
    for name, p in net.named_parameters():
        if name not in warm_names:
            assert p.grad is None, f"{name} received a gradient"
        assert p.requires_grad  # everything trainable again for the supervised stage


def test_warmup_gradients_flow_through_the_prefix_runs():
    """Layer 2's VAA* reaches layer 1's warmed cell through the prefix that produced layer 2's
    initial state (METHOD.md): with only layer 2's term in the loss, layer 1 still gets a gradient."""
    torch.manual_seed(0)
    net = StackedRNN(GRU, 1, 8, num_layers=2, output_size=1, warm_fraction=0.5)
    module = WarmupModule(net)
    module.on_fit_start()
    values = module.vaa_star_per_layer(torch.randn(20, 16, 1), horizon=5)
    values[1].backward()
    grads = [p.grad for p in net.layers[0].warm.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    module.on_fit_end()


def test_horizon_grows_then_caps():
    module = WarmupModule(StackedRNN(GRU, 1, 4, 1, 1, warm_fraction=1.0))
    assert [module.horizon_bound(k) for k in (0, 1, 5, 19, 20, 99)] == [1, 11, 51, 191, 200, 200]


def test_warmup_refuses_a_network_without_warmed_cells():
    with pytest.raises(ValueError, match="no warmed"):
        WarmupModule(StackedRNN(GRU, 1, 4, 1, 1, warm_fraction=0.0, parallel=True))


# ------------------------------------------------------------- the robust method
def _multistable_gru(seed=0):
    """A one-layer GRU whose strong self-excitation gives many fixed points."""
    torch.manual_seed(seed)
    net = StackedRNN(GRU, 1, 8, num_layers=1, output_size=1, warm_fraction=1.0)
    with torch.no_grad():
        cell = net.layers[0].warm
        cell.weight_hh.zero_()
        cell.weight_hh[16:24] = 3.0 * torch.eye(8)  # candidate block: each unit bistable
    return net


def _robust(net, **kwargs):
    data = DataLoader(TensorDataset(torch.randn(64, 20, 1)), batch_size=16,
                      collate_fn=lambda b: (torch.stack([s[0] for s in b]).transpose(0, 1),))
    select = torch.randn(20, 16, 1, generator=torch.Generator().manual_seed(1))
    module = WarmupModule(net, method="robust", steps=12, select_every=4, select_steps=300,
                          select_inputs=select, **kwargs)
    pl.Trainer(max_steps=12, max_epochs=-1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(module, data)
    return module, select


def test_robust_warmup_ends_on_the_best_network_it_measured():
    """Selection: measured before the first step and every 4 steps; the stage ends on the
    weights of the best score, the untouched network included. Driving VAA* towards 0 (a
    target no network reaches) with a large step destroys this network's attractors, so
    here the best is the start, and the weights come back exactly."""
    from src.vaa import measure_vaa
    from src.warmup import selection_score

    net = _multistable_gru()
    start = copy.deepcopy(net.state_dict())
    module, select = _robust(net, lr=0.5, vaa_target=0.0)
    assert [s for s, _, _ in module.selections] == [0, 4, 8, 12]
    scores = [selection_score(v, st) for _, v, st in module.selections]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    m = measure_vaa(net, select, steps=300, group_size=16, seed=0)
    assert selection_score(m.vaa, m.settled) == pytest.approx(scores[best])
    assert scores[0] >= 2 / 16, "the hand-made network is multistable to begin with"
    assert best == 0, f"warm-up towards VAA* = 0 should not beat the start: {scores}"
    assert all(torch.equal(start[k], v) for k, v in net.state_dict().items())


def test_robust_warmup_redraws_steps_without_gradient():
    """At a horizon where every final state of the untrained GRU has collapsed within eps,
    VAA* is exactly 1/N and the paper's step has no gradient; the robust step redraws a
    shorter horizon and learns."""
    grads = {}
    for method in ("paper", "robust"):
        torch.manual_seed(0)
        net = StackedRNN(GRU, 1, 8, num_layers=1, output_size=1, warm_fraction=1.0)
        select = torch.randn(20, 16, 1) if method == "robust" else None
        module = WarmupModule(net, method=method, select_inputs=select, max_horizon=5000)
        module.horizon_bound = lambda k: 5000  # every draw far past the collapse
        torch.manual_seed(1)
        loss = module.training_step((torch.randn(20, 16, 1),), 0)
        loss.backward()
        grads[method] = sum(float(p.grad.abs().sum()) for p in net.warm_parameters()
                            if p.grad is not None)
    assert grads["paper"] == 0.0
    assert grads["robust"] > 0.0


def test_warmup_method_is_checked():
    net = StackedRNN(GRU, 1, 4, 1, 1, warm_fraction=1.0)
    with pytest.raises(ValueError, match="warmup.method='fast'"):
        WarmupModule(net, method="fast")
    with pytest.raises(ValueError, match="select_inputs"):
        WarmupModule(net, method="robust")
