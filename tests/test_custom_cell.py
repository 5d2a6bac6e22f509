"""A user's own cell plugs in with one Python file and one YAML, and no other edit.

The cell below is defined here, in the test; its YAML is written to a config
directory outside the project, added to Hydra's search path, and the cell is
run through the real entry point with warm-up, as the README shows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import ROOT, run_cli, tiny
from torch import nn

from src.cells.base import RecurrentCell


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
