"""Bistable recurrent cell (Vecoven, Ernst and Drion 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.cells.base import RecurrentCell, State


def bistable_update(gx_h: Tensor, h: Tensor, c: Tensor, a: Tensor):
    """The update BRC and nBRC share, given their gates: ``((h',), aux)`` with
    ``h' = c h + (1 - c) tanh(gx_h + a h)`` and ``aux = (c, a, h~)``."""
    h_tilde = torch.tanh(torch.addcmul(gx_h, a, h))
    return (torch.lerp(h_tilde, h, c),), (c, a, h_tilde)


def bistable_backward(dh: Tensor, h: Tensor, aux, d_gx: Tensor) -> Tensor:
    """The derivative lines BRC and nBRC share. Writes into ``d_gx`` ``(N, 3H)`` the gradients
    of the pre-activations of c, a and h~ (blocks in that order), and returns the part of
    the gradient of the previous h that does not pass through the gates' recurrent weights,
    ``dh c + d_h~ a``; each cell adds its own recurrent term."""
    c, a, h_tilde = aux
    d_pc, d_pa, d_ph = d_gx.split(h.shape[-1], 1)  # written in place: pre-activations
    dh_c = dh * c
    one = torch.ones_like(h[0])
    torch.mul(dh - dh_c, torch.addcmul(one, h_tilde, h_tilde, value=-1), out=d_ph)  # tanh'
    torch.mul(d_ph * h, torch.addcmul(2 * a, a, a, value=-1), out=d_pa)  # a (2 - a) = tanh'
    torch.mul(dh * (h - h_tilde), torch.addcmul(c, c, c, value=-1), out=d_pc)  # sigmoid'
    return torch.addcmul(dh_c, d_ph, a)


class BRC(RecurrentCell):
    r"""BRC: each unit is bistable when its feedback ``a`` exceeds 1.

    .. math::
        c &= \sigma(U_c x + w_c \odot h + b_c) \\
        a &= 1 + \tanh(U_a x + w_a \odot h + b_a) \\
        h' &= c \odot h + (1 - c) \odot \tanh(U_h x + a \odot h + b_h)

    Recurrence is only through the per-unit vectors ``w_c``, ``w_a`` (no
    recurrent matrix): the units are coupled only through the next layer.

    Parameters (blocks in the order c, a, h): ``weight_ih`` ``(3H, I)`` =
    ``[U_c; U_a; U_h]``, ``w_c`` and ``w_a`` ``(H,)``, ``bias`` ``(3H,)`` =
    ``[b_c; b_a; b_h]``.

    Initialisation (the authors' code): Xavier-uniform on each of ``U_c``,
    ``U_a``, ``U_h`` separately, ``w_c = w_a = 1``, zero biases.

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
        self.w_c = nn.Parameter(torch.empty(H))
        self.w_a = nn.Parameter(torch.empty(H))
        self.bias = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for w in self.weight_ih.chunk(3):
                nn.init.xavier_uniform_(w)
            nn.init.ones_(self.w_c)
            nn.init.ones_(self.w_a)
            nn.init.zeros_(self.bias)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias)

    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "brc"

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.w_c, self.w_a)

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h,), (w_c, w_a) = state, weights
        gx_c, gx_a, gx_h = gx_t.split(h.shape[-1], 1)
        c = torch.sigmoid(torch.addcmul(gx_c, w_c, h))
        a = 1 + torch.tanh(torch.addcmul(gx_a, w_a, h))
        return bistable_update(gx_h, h, c, a)

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_gx):
        (dh,), (h,), (w_c, w_a) = d_state, prev, weights
        d_h = bistable_backward(dh, h, aux, d_gx)
        d_pc, d_pa, _ = d_gx.split(h.shape[-1], 1)
        return (d_h.addcmul_(d_pa, w_a).addcmul_(d_pc, w_c),), None

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        H = h0.shape[-1]

        def over_time(d):  # sum_t sum_n d[t] * h_{t-1}
            return (d[1:] * ys[:-1]).sum((0, 1)) + (d[0] * h0).sum(0)

        d_w_c = over_time(d_gx[:, :, :H]) if needs[0] else None
        d_w_a = over_time(d_gx[:, :, H : 2 * H]) if needs[1] else None
        return d_w_c, d_w_a
