"""Plain tanh RNN (Elman 1990), the simplest monostable cell."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.cells.base import RecurrentCell, State, matmul_over_time


class RNN(RecurrentCell):
    r"""Elman RNN with tanh, PyTorch's ``nn.RNN`` equations.

    .. math::
        h' = \tanh(W x + b_{ih} + U h + b_{hh})

    Parameters as in ``nn.RNN``: ``weight_ih`` ``(H, I)``, ``weight_hh``
    ``(H, H)``, ``bias_ih``, ``bias_hh`` ``(H,)``.

    Initialisation: PyTorch's, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).

    ``fast`` (default ``True``) runs the time loop with its hand-written
    backward, ``False`` with autograd through every step: same results
    (:mod:`src.cells.base`).

    Reference: J. L. Elman, "Finding structure in time", Cognitive Science 14, 1990.
    """

    #: warmup.method=excite: the whole recurrent matrix (docs/excite.md)
    excitation_rows = (0, 1)
    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "rnn"

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__(input_size, hidden_size, fast)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        self.bias_ih = nn.Parameter(torch.empty(H))
        self.bias_hh = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias_ih + self.bias_hh)

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.weight_hh,)

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h,), (w_hh,) = state, weights
        h_new = torch.tanh(torch.addmm(gx_t, h, w_hh.t()))
        return (h_new,), (h_new,)

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_pre):
        (dh,), (h_new,), (w_hh,) = d_state, aux, weights
        torch.mul(dh, torch.addcmul(torch.ones_like(dh[0]), h_new, h_new, value=-1), out=d_pre)
        return (d_pre @ w_hh,), None

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        return (matmul_over_time(d_gx, h0, ys) if needs[0] else None,)
