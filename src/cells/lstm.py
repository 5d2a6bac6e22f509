"""Long short-term memory (Hochreiter & Schmidhuber 1997), PyTorch's equations and init."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from src.cells.base import RecurrentCell, State, matmul_over_time


class LSTM(RecurrentCell):
    r"""LSTM, numerically the same layer as a one-layer ``nn.LSTM``; state ``(h, c)``.

    .. math::
        i &= \sigma(W_i x + b_{ii} + U_i h + b_{hi}) \\
        f &= \sigma(W_f x + b_{if} + U_f h + b_{hf}) \\
        g &= \tanh(W_g x + b_{ig} + U_g h + b_{hg}) \\
        o &= \sigma(W_o x + b_{io} + U_o h + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c')

    Parameters as in ``nn.LSTM`` (gate blocks in the order i, f, g, o):
    ``weight_ih`` ``(4H, I)``, ``weight_hh`` ``(4H, H)``, ``bias_ih``,
    ``bias_hh`` ``(4H,)``; copying them into ``nn.LSTM(I, H)`` (suffix
    ``_l0``) gives the same outputs. The two biases enter only through their
    sum, which is added once, in the input projection.

    ``fast`` (default ``True``): without ``lengths`` the sequence runs in
    PyTorch's own LSTM kernel (``torch.lstm``, what ``nn.LSTM`` calls: oneDNN
    on CPU, cuDNN on GPU), measured fastest; with ``lengths``, in the loop with
    the hand-written backward of :mod:`src.cells.base`. ``False``: autograd
    through every step. Same results either way, up to float rounding.

    Initialisation: PyTorch's default (as the authors' code, which uses
    ``nn.LSTM``): every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).

    Reference: S. Hochreiter and J. Schmidhuber, "Long short-term memory",
    Neural Computation 9(8), 1997 (with the forget gate of Gers et al. 2000).
    """

    state_size = 2

    #: warmup.method=excite: the cell input g's block U_g (docs/excite.md)
    excitation_rows = (2, 3)
    excitation_scale = 0.5  # U's feedback passes through the output gate o, sigma(0) at init
    #: the same loop in C++ (src/cells/native.cpp): same numbers up to float32 rounding, faster
    native = "lstm"

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__(input_size, hidden_size, fast)
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias_ih = nn.Parameter(torch.empty(4 * H))
        self.bias_hh = nn.Parameter(torch.empty(4 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)

    def input_projection(self, x_seq: Tensor) -> Tensor:
        return F.linear(x_seq, self.weight_ih, self.bias_ih + self.bias_hh)

    def recurrent_weights(self) -> tuple[Tensor, ...]:
        return (self.weight_hh,)

    has_sequence_kernel = True

    def sequence_kernel(self, x_seq: Tensor, state: State) -> tuple[Tensor, State]:
        """PyTorch's own LSTM (oneDNN on CPU, cuDNN on GPU) on this cell's parameters: a
        one-layer ``nn.LSTM`` without weights of its own (on the meta device, so building it
        draws no random numbers) is called through :func:`torch.func.functional_call`."""
        kernel = self.__dict__.get("_kernel")
        if kernel is None:  # kept out of the module tree: no state_dict entries, no .to()
            kernel = nn.LSTM(self.input_size, self.hidden_size, device="meta")
            object.__setattr__(self, "_kernel", kernel)
        kernel.train(self.training)
        weights = {"weight_ih_l0": self.weight_ih, "weight_hh_l0": self.weight_hh,
                   "bias_ih_l0": self.bias_ih, "bias_hh_l0": self.bias_hh}
        h0, c0 = (s.unsqueeze(0) for s in state)
        y, (h, c) = functional_call(kernel, weights, (x_seq, (h0, c0)))
        return y, (h.squeeze(0), c.squeeze(0))

    @staticmethod
    def fused_step(gx_t: Tensor, state: State, weights):
        (h, c), (w_hh,) = state, weights
        H = h.shape[-1]
        pre_if, pre_g, pre_o = torch.addmm(gx_t, h, w_hh.t()).split([2 * H, H, H], 1)
        if_, g, o = torch.sigmoid(pre_if), torch.tanh(pre_g), torch.sigmoid(pre_o)
        i, f = if_.split(H, 1)
        c_new = torch.addcmul(f * c, i, g)
        tc = torch.tanh(c_new)
        return (o * tc, c_new), (if_, g, o, tc)

    @staticmethod
    def fused_step_backward(d_state, prev, aux, weights, d_gates):
        (dh, dc), (_, c), (if_, g, o, tc), (w_hh,) = d_state, prev, aux, weights
        H = c.shape[-1]
        i, f = if_.split(H, 1)
        d_i, d_f, d_g, d_o = d_gates.split(H, 1)  # written in place: pre-activation gradients
        one = torch.ones_like(c[0])
        dc = torch.addcmul(dc, dh * o, torch.addcmul(one, tc, tc, value=-1))  # tanh'
        torch.mul(dc, g, out=d_i)
        torch.mul(dc, c, out=d_f)
        d_gates[:, : 2 * H].mul_(torch.addcmul(if_, if_, if_, value=-1))  # sigmoid'
        torch.mul(dc * i, torch.addcmul(one, g, g, value=-1), out=d_g)
        torch.mul(dh * tc, torch.addcmul(o, o, o, value=-1), out=d_o)
        return (d_gates @ w_hh, dc * f), None

    @staticmethod
    def fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs):
        return (matmul_over_time(d_gx, h0, ys) if needs[0] else None,)
