"""Recurrently neuromodulated bistable recurrent cell (Vecoven, Ernst and Drion 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.cells.base import RecurrentCell, State, matmul_over_time
from src.cells.brc import bistable_backward, bistable_update


class NBRC(RecurrentCell):
    r"""nBRC: the BRC with full recurrent matrices in its two gates.

    .. math::
        c &= \sigma(U_c x + W_c h + b_c) \\
        a &= 1 + \tanh(U_a x + W_a h + b_a) \\
        h' &= c \odot h + (1 - c) \odot \tanh(U_h x + a \odot h + b_h)

    Parameters (blocks in the order c, a, h): ``weight_ih`` ``(3H, I)`` =
    ``[U_c; U_a; U_h]``, ``weight_hh`` ``(2H, H)`` = ``[W_c; W_a]``, ``bias``
    ``(3H,)`` = ``[b_c; b_a; b_h]``.

    Initialisation (the authors' code): Xavier-uniform on each of ``U_c``,
    ``U_a``, ``U_h``, ``W_c``, ``W_a`` separately, zero biases.

    ``fast`` (default ``True``) runs the time loop with its hand-written
    backward, ``False`` with autograd through every step: same results
    (:mod:`src.cells.base`).

    Reference: N. Vecoven, D. Ernst and G. Drion, "A bio-inspired bistable
    recurrent cell allows for long-lasting memory", PLoS ONE 16(6), 2021
    (arXiv:2006.05252).
    """

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__(input_size, hidden_size, fast)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * H, H))
        self.bias = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for w in (*self.weight_ih.chunk(3), *self.weight_hh.chunk(2)):
                nn.init.xavier_uniform_(w)
            nn.init.zeros_(self.bias)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias)

    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "nbrc"

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.weight_hh,)

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h,), (w_hh,) = state, weights
        H = h.shape[-1]
        gx_ca, gx_h = gx_t.split([2 * H, H], 1)
        pre_c, pre_a = torch.addmm(gx_ca, h, w_hh.t()).split(H, 1)
        return bistable_update(gx_h, h, torch.sigmoid(pre_c), 1 + torch.tanh(pre_a))

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_gx):
        (dh,), (h,), (w_hh,) = d_state, prev, weights
        d_h = bistable_backward(dh, h, aux, d_gx)
        return (torch.addmm(d_h, d_gx[:, : 2 * h.shape[-1]], w_hh),), None

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        H = h0.shape[-1]
        return (matmul_over_time(d_gx[:, :, : 2 * H], h0, ys) if needs[0] else None,)
