"""Pictures of attractors (src/attractors/): the traced states are the measured ones."""

from __future__ import annotations

import torch

from src.attractors import Trajectories, attractor_labels, draw, trajectories
from src.cells import BRC, GRU
from src.rnn import StackedRNN
from src.vaa import settled_states


def test_attractor_labels_chain_close_states_and_put_the_largest_group_first():
    final = torch.tensor([[5.0, 0], [0, 0], [5.0, 0], [0, 0.6e-4], [0, 1.2e-4], [9, 9]])
    # 0, 0.6e-4 and 1.2e-4 are chained by eps = 1e-4 steps: one group of three
    assert attractor_labels(final).tolist() == [1, 0, 1, 0, 0, 2]


def test_traced_states_are_the_measured_group():
    """The last point of every trajectory is the final state of the VAA measurement's
    first group (same prefixes, same constant input), with the same settled mask."""
    torch.manual_seed(0)
    inputs = torch.randn(30, 48, 3)
    for cell in (GRU, BRC):
        net = StackedRNN(cell, 3, 8, 2, 1, warm_fraction=1.0)
        tr = trajectories(net, inputs, steps=700, group_size=16, seed=5)
        final, settled = settled_states(net, inputs, 700, 16, seed=5)
        assert tr.times[0] == 0 and tr.times[-1] == 700 and tr.path.shape[:2] == (len(tr.times), 16)
        torch.testing.assert_close(tr.path[-1], final[:16], atol=1e-5, rtol=0)
        assert torch.equal(tr.settled, settled[:16])
        assert tr.attractors == len(set(tr.labels.tolist())) >= 1


def test_the_picture_is_drawn(tmp_path):
    path = torch.linspace(0, 1, 5)[:, None, None] * torch.randn(1, 4, 3)
    tr = Trajectories(path, [0, 1, 10, 100, 1000], torch.tensor([True, True, False, True]),
                      torch.tensor([0, 1, 2, 0]))
    assert (tr.attractors, tr.fixed_points) == (3, 2)
    png = draw({"init": tr, "warmup": tr}, "title", tmp_path / "a.png")
    assert png.stat().st_size > 10_000
