"""Minimal gated unit (Zhou et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.cells.base import RecurrentCell, State, matmul_over_time


class MGU(RecurrentCell):
    r"""MGU: a GRU whose single gate ``f`` serves as both reset and update gate.

    .. math::
        f &= \sigma(W_f x + U_f h + b_f) \\
        \tilde h &= \tanh(W_h x + U_h (f \odot h) + b_h) \\
        h' &= (1 - f) \odot h + f \odot \tilde h

    Parameters (blocks in the order f, h): ``weight_ih`` ``(2H, I)`` =
    ``[W_f; W_h]``, ``weight_hh`` ``(2H, H)`` = ``[U_f; U_h]``, ``bias``
    ``(2H,)`` = ``[b_f; b_h]``.

    Initialisation (the authors' code): Xavier-uniform on each of the four
    weight matrices separately, zero biases.

    ``fast`` (default ``True``) runs the time loop with its hand-written
    backward, ``False`` with autograd through every step: same results
    (:mod:`src.cells.base`).

    Reference: G.-B. Zhou, J. Wu, C.-L. Zhang and Z.-H. Zhou, "Minimal gated
    unit for recurrent neural networks", IJAC 13(3), 2016 (arXiv:1603.09420).
    """

    #: warmup.method=excite: the candidate's block U_h (docs/excite.md)
    excitation_rows = (1, 2)
    excitation_scale = 0.5  # U's feedback passes through the forget gate f, sigma(0) at init
    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "mgu"

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__(input_size, hidden_size, fast)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(2 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * H, H))
        self.bias = nn.Parameter(torch.empty(2 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for w in (*self.weight_ih.chunk(2), *self.weight_hh.chunk(2)):
                nn.init.xavier_uniform_(w)
            nn.init.zeros_(self.bias)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias)

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.weight_hh,)

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h,), (w_hh,) = state, weights
        H = h.shape[-1]
        gx_f, gx_h = gx_t.split(H, 1)
        u_f, u_h = w_hh.split(H)
        f = torch.sigmoid(torch.addmm(gx_f, h, u_f.t()))
        fh = f * h
        h_tilde = torch.tanh(torch.addmm(gx_h, fh, u_h.t()))
        return (torch.lerp(h, h_tilde, f),), (f, fh, h_tilde)  # (1 - f) h + f h_tilde

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_gx):
        (dh,), (h,), (f, _, h_tilde), (w_hh,) = d_state, prev, aux, weights
        u_f, u_h = w_hh.split(h.shape[-1])
        d_pf, d_ph = d_gx.split(h.shape[-1], 1)  # written in place: pre-activation gradients
        dh_f = dh * f
        one = torch.ones_like(h[0])
        torch.mul(dh_f, torch.addcmul(one, h_tilde, h_tilde, value=-1), out=d_ph)  # tanh'
        d_fh = d_ph @ u_h
        torch.mul(
            torch.addcmul(dh * (h_tilde - h), d_fh, h), torch.addcmul(f, f, f, value=-1), out=d_pf
        )  # sigmoid'
        return (torch.addmm(torch.addcmul(dh - dh_f, d_fh, f), d_pf, u_f),), None

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        if not needs[0]:
            return (None,)
        H = h0.shape[-1]
        fh = torch.stack([a[1] for a in auxes]).flatten(0, 1)  # f * h_{t-1}
        d_uh = d_gx[:, :, H:].flatten(0, 1).t() @ fh
        return (torch.cat([matmul_over_time(d_gx[:, :, :H], h0, ys), d_uh]),)
