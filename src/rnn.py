"""The stacked recurrent network, with the warmed/plain split of partial warm-up.

Each layer is a :class:`SplitLayer`: a *warmed* sub-cell of ``warm_size`` units
and a *plain* sub-cell of the remaining units, side by side, both fed the
layer's input, outputs concatenated (the paper's "double" layer, generalised
to a warm-up fraction f: warmed part ``floor(f * H + 0.5)`` units). With f = 1
the layer is one warmed cell, with f = 0 one plain cell. ``parallel=True``
keeps the split structure even when nothing is warmed (the ablation that
separates the effect of the structure from that of warm-up; the split is then
half and half).

A linear read-out maps the top layer's output to the benchmark's outputs at
every step; the loss picks the steps it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from src import rules
from src.cells.base import RecurrentCell

CellFactory = Callable[[int, int], RecurrentCell]


def split_sizes(hidden_size: int, fraction: float, parallel: bool) -> tuple[int, int]:
    """``(warmed units, plain units)`` of one layer for a warm-up fraction.

    0 < f < 1 gives the partial split; with ``parallel`` and f in {0, 1}... f = 0 gives a
    half/half split in which nothing is warmed (f = 1 with ``parallel`` is refused:
    a fully warmed layer has no plain part).
    """
    rules.FRACTION.check("warmup.fraction", fraction)
    if parallel and fraction == 1.0:
        raise ValueError(
            "net.parallel=true needs a plain part, but warmup.fraction=1 warms every unit: "
            "use warmup=partial (or warmup.fraction<1), or net.parallel=false"
        )
    structure = 0.5 if (parallel and fraction == 0.0) else fraction
    warm = math.floor(structure * hidden_size + 0.5)
    if 0.0 < structure < 1.0 and not 0 < warm < hidden_size:
        raise ValueError(
            f"warmup.fraction={fraction} of net.hidden_size={hidden_size} leaves one part empty "
            f"({warm} warmed units): raise net.hidden_size or move the fraction away from 0 and 1"
        )
    return warm, hidden_size - warm


class SplitLayer(nn.Module):
    """One layer: warmed sub-cell (may be absent) beside plain sub-cell (may be absent)."""

    def __init__(self, make_cell: CellFactory, input_size: int, warm_size: int, plain_size: int):
        super().__init__()
        self.warm = make_cell(input_size, warm_size) if warm_size > 0 else None
        self.plain = make_cell(input_size, plain_size) if plain_size > 0 else None
        self.input_size = input_size
        self.hidden_size = warm_size + plain_size

    def parts(self) -> list[RecurrentCell | None]:
        return [self.warm, self.plain]

    def forward(self, x: Tensor, state=None, lengths: Tensor | None = None):
        state = state if state is not None else (None, None)
        ys, new_state = [], []
        for cell, s in zip(self.parts(), state):
            if cell is None:
                new_state.append(None)
                continue
            y, s = cell(x, s, lengths)
            ys.append(y)
            new_state.append(s)
        y = ys[0] if len(ys) == 1 else torch.cat(ys, dim=-1)
        return y, tuple(new_state)


class StackedRNN(nn.Module):
    """``num_layers`` split layers and a linear read-out; time-major ``(L, N, *)`` tensors."""

    def __init__(
        self,
        make_cell: CellFactory,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        output_size: int,
        warm_fraction: float = 0.0,
        parallel: bool = False,
    ):
        super().__init__()
        rules.at_least(1).check("net.num_layers", num_layers)
        rules.at_least(1).check("net.hidden_size", hidden_size)
        warm, plain = split_sizes(hidden_size, warm_fraction, parallel)
        self.warm_fraction = warm_fraction
        self.layers = nn.ModuleList(
            SplitLayer(make_cell, input_size if i == 0 else hidden_size, warm, plain)
            for i in range(num_layers)
        )
        self.readout = nn.Linear(hidden_size, output_size)

    @property
    def warms_up(self) -> bool:
        """Whether warm-up applies: some units are marked to be warmed."""
        return self.warm_fraction > 0 and self.layers[0].warm is not None

    def recurrent(self, x: Tensor, states=None, lengths: Tensor | None = None):
        """Top layer's output ``(L, N, H)`` and the list of per-layer states."""
        states = states if states is not None else [None] * len(self.layers)
        new_states = []
        for layer, s in zip(self.layers, states):
            x, s = layer(x, s, lengths)
            new_states.append(s)
        return x, new_states

    def forward(self, x: Tensor, states=None, lengths: Tensor | None = None):
        h, states = self.recurrent(x, states, lengths)
        return self.readout(h), states

    def warm_cells(self) -> list[RecurrentCell]:
        """The warmed sub-cell of each layer (the only parameters warm-up may change)."""
        if not self.warms_up:
            return []
        return [layer.warm for layer in self.layers]

    def warm_parameters(self) -> list[nn.Parameter]:
        return [p for cell in self.warm_cells() for p in cell.parameters()]
