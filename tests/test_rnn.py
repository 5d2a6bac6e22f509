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
    initial state (docs/method.md): with only layer 2's term in the loss, layer 1 still gets a gradient."""
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


def test_warmup_method_is_checked():
    net = StackedRNN(GRU, 1, 4, 1, 1, warm_fraction=1.0)
    with pytest.raises(ValueError, match="warmup.method=fast must be one of paper, excite"):
        WarmupModule(net, method="fast")
    with pytest.raises(ValueError, match="warmup.method=robust must be one of paper, excite"):
        WarmupModule(net, method="robust")  # retired
