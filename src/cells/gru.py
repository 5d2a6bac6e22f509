"""Gated recurrent unit (Cho et al. 2014), PyTorch's equations, the authors' initialisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.cells.base import RecurrentCell, State, matmul_over_time


class GRU(RecurrentCell):
    r"""GRU, numerically the same layer as a one-layer ``nn.GRU``.

    .. math::
        r &= \sigma(W_r x + b_{ir} + U_r h + b_{hr}) \\
        z &= \sigma(W_z x + b_{iz} + U_z h + b_{hz}) \\
        n &= \tanh(W_n x + b_{in} + r \odot (U_n h + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h

    Parameters as in ``nn.GRU`` (gate blocks in the order r, z, n):
    ``weight_ih`` ``(3H, I)``, ``weight_hh`` ``(3H, H)``, ``bias_ih``,
    ``bias_hh`` ``(3H,)``; copying them into ``nn.GRU(I, H)`` (suffix ``_l0``)
    gives the same outputs.

    Initialisation (the authors' code): Xavier-uniform on each gate block of
    ``weight_ih``, orthogonal on each gate block of ``weight_hh``, zero biases.

    ``fast`` (default ``True``) runs the time loop with its hand-written
    backward, ``False`` with autograd through every step: same results
    (:mod:`src.cells.base`).

    Reference: K. Cho et al., "Learning phrase representations using RNN
    encoder-decoder for statistical machine translation", EMNLP 2014.
    """

    #: warmup.method=excite: the candidate n's block U_n (docs/excite.md)
    excitation_rows = (2, 3)
    excitation_scale = 0.5  # U's feedback passes through the reset gate r, sigma(0) at init
    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "gru"

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__(input_size, hidden_size, fast)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        self.bias_ih = nn.Parameter(torch.empty(3 * H))
        self.bias_hh = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for w_ih, w_hh in zip(self.weight_ih.chunk(3), self.weight_hh.chunk(3)):
                nn.init.xavier_uniform_(w_ih)
                nn.init.orthogonal_(w_hh)
            nn.init.zeros_(self.bias_ih)
            nn.init.zeros_(self.bias_hh)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias_ih)

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.weight_hh, self.bias_hh)

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h,), (w_hh, b_hh) = state, weights
        H = h.shape[-1]
        gx_rz, gx_n = gx_t.split([2 * H, H], 1)
        gh_rz, gh_n = torch.addmm(b_hh, h, w_hh.t()).split([2 * H, H], 1)
        rz = torch.sigmoid(gx_rz + gh_rz)
        r, z = rz.split(H, 1)
        n = torch.tanh(torch.addcmul(gx_n, r, gh_n))
        h_new = torch.lerp(n, h, z)  # (1 - z) * n + z * h
        return (h_new,), (rz, n, gh_n)

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_gx):
        (dh,), (h,), (rz, n, gh_n), (w_hh, _) = d_state, prev, aux, weights
        H = h.shape[-1]
        r, z = rz.split(H, 1)
        d_r, d_z, d_n = d_gx.split(H, 1)  # written in place: gradients of the pre-activations
        dh_z = dh * z
        torch.mul(dh - dh_z, torch.addcmul(torch.ones_like(dh[0]), n, n, value=-1), out=d_n)
        torch.mul(d_n, gh_n, out=d_r)
        torch.mul(dh, h - n, out=d_z)
        d_rz = d_gx[:, : 2 * H].mul_(torch.addcmul(rz, rz, rz, value=-1))  # sigmoid'
        d_gh_n = d_n * r
        d_h = torch.addmm(dh_z, d_rz, w_hh[: 2 * H]).addmm_(d_gh_n, w_hh[2 * H :])
        return (d_h,), d_gh_n

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        H = h0.shape[-1]
        d_rz = d_gx[:, :, : 2 * H]
        d_gh_n = d_rec if isinstance(d_rec, Tensor) else torch.stack(d_rec)  # C++ loop: stacked
        d_w = d_b = None
        if needs[0]:
            d_w = torch.cat([matmul_over_time(d_rz, h0, ys), matmul_over_time(d_gh_n, h0, ys)])
        if needs[1]:
            d_b = torch.cat([d_rz.sum((0, 1)), d_gh_n.sum((0, 1))])
        return d_w, d_b
