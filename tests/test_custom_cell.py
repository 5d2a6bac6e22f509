"""A user's own cell plugs in with one Python file and one YAML, and no other edit.

The cell below is defined here, in the test; its YAML is written to a config
directory outside the project, added to Hydra's search path, and the cell is
run through the real entry point with warm-up, as the README shows.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, run_cli, tiny
from torch import nn

from src.cells.base import RecurrentCell, matmul_over_time


class LeakyCell(RecurrentCell):
    """h' = (1 - a) h + a tanh(W x + U h + b), a fixed leak rate: a cell nobody shipped."""

    def __init__(self, input_size: int, hidden_size: int, leak: float = 0.5) -> None:
        super().__init__(input_size, hidden_size)
        self.leak = leak
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight_ih)
        nn.init.orthogonal_(self.weight_hh)
        nn.init.zeros_(self.bias)

    def input_projection(self, x_seq):
        return F.linear(x_seq, self.weight_ih, self.bias)

    def recurrent_weights(self):
        return (self.weight_hh,)

    def fused_step(self, gx_t, state, weights):
        (h,), (w_hh,) = state, weights
        return ((1 - self.leak) * h + self.leak * torch.tanh(gx_t + h @ w_hh.t()),), None


class FastLeaky(LeakyCell):
    """The README's ``Leaky`` with the fast path's hand-written backward. The hooks are
    instance methods that read the cell's own hyper-parameter (``self.leak``)."""

    def fused_step(self, gx_t, state, weights):
        (h,), (w_hh,) = state, weights
        n = torch.tanh(gx_t + h @ w_hh.t())
        return (torch.lerp(h, n, self.leak),), n  # (1 - leak) h + leak n; aux: n

    def fused_step_backward(self, d_state, prev, aux, weights, d_gx):
        (dh,), _, n, (w_hh,) = d_state, prev, aux, weights
        torch.mul(dh * self.leak, 1 - n * n, out=d_gx)  # the pre-activation's gradient
        return (dh * (1 - self.leak) + d_gx @ w_hh,), None

    def fused_weight_grads(self, d_gx, d_rec, h0, ys, auxes, weights, needs):
        return (matmul_over_time(d_gx, h0, ys) if needs[0] else None,)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_own_cell_with_a_backward_matches_autograd(with_lengths):
    """The fast loop hands the hooks the cell instance: a backward that reads ``self.leak``
    gives autograd's outputs and gradients (weights, inputs, initial state)."""
    torch.manual_seed(0)
    fast = FastLeaky(3, 5, leak=0.3).double()
    slow = FastLeaky(3, 5, leak=0.3).double()
    slow.load_state_dict(fast.state_dict())
    slow.fast = False
    x = torch.randn(7, 4, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 2, 5, 1]) if with_lengths else None
    results = []
    for cell in (fast, slow):
        y, (h,) = cell(x, (h0,), lengths)
        (y.pow(2).sum() + h.sin().sum()).backward()
        results.append([y, h, x.grad.clone(), h0.grad.clone(),
                        *(p.grad.clone() for p in cell.parameters())])
        x.grad = h0.grad = None
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_own_cell_matches_its_equation():
    cell = LeakyCell(2, 3, leak=0.3).double()
    x = torch.randn(5, 4, 2, dtype=torch.float64)
    y, (h,) = cell(x)
    ref = torch.zeros(4, 3, dtype=torch.float64)
    for t in range(5):
        ref = 0.7 * ref + 0.3 * torch.tanh(x[t] @ cell.weight_ih.T + cell.bias + ref @ cell.weight_hh.T)
        assert torch.allclose(y[t], ref)
    assert torch.allclose(h, ref)


def test_own_cell_plugs_into_the_pipeline_with_one_yaml(tmp_path, store):
    uri, client = store
    conf = tmp_path / "conf" / "cell"
    conf.mkdir(parents=True)
    (conf / "leaky.yaml").write_text("_target_: test_custom_cell.LeakyCell\nleak: 0.2\n")
    proc = run_cli(
        ["cell=leaky", "warmup=partial", *tiny(), f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
         f"mlflow.tracking_uri={uri}", f"hydra.run.dir={tmp_path / 'run'}"],
        extra_path=[ROOT / "tests"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = client.search_runs([client.get_experiment_by_name("warmup").experiment_id])
    assert run.info.run_name == "leaky-partial-copy-s0" and run.data.tags["cell"] == "leaky"
    assert run.data.params["cell.leak"] == "0.2"
    assert len(client.get_metric_history(run.info.run_id, "warmup/loss")) == 4
    assert "test/loss" in run.data.metrics
