"""Chrono-initialised LSTM (Tallec & Ollivier 2018)."""

from __future__ import annotations

import torch
from torch import nn

from src.cells.lstm import LSTM

#: ``t_max`` used when none is given (the default copy-task length of the authors' code).
DEFAULT_T_MAX = 100


class ChronoLSTM(LSTM):
    r"""LSTM (same equations as :class:`~src.cells.lstm.LSTM`) with chrono initialisation.

    Initialisation: weights as the LSTM (PyTorch's default uniform); biases

    .. math::
        b_f = \log u,\quad u \sim U(1, T_{max} - 1) \text{ (one draw per unit)},
        \qquad b_i = -b_f,\qquad b_g = b_o = 0,

    set on ``bias_ih``; ``bias_hh`` is zero. The forget gate then starts with
    characteristic times spread over ``[1, T_max - 1]`` steps.

    ``t_max`` should be the order of the longest dependency, the benchmark's
    sequence length (the run script passes it); ``None`` means
    :data:`DEFAULT_T_MAX` (100).

    Departure from the authors' code: it draws the rule independently for both
    of PyTorch's bias vectors (``bias_ih`` and ``bias_hh``), which only enter
    through their sum, so the effective forget bias there is
    ``log(u1 * u2)``, in ``[0, 2 log(T_max - 1)]``, and not chrono's
    ``log u``. Here the rule holds on one vector and the other is zero, so the
    effective biases are exactly chrono's (docs/method.md).

    Reference: C. Tallec and Y. Ollivier, "Can recurrent neural networks warp
    time?", ICLR 2018.
    """

    def __init__(
        self, input_size: int, hidden_size: int, t_max: int | None = None, fast: bool = True
    ) -> None:
        # None: not given (the YAML's `t_max: null` instantiated outside the pipeline, whose
        # cell factory fills it with the benchmark's length): the authors' default
        self.t_max = DEFAULT_T_MAX if t_max is None else int(t_max)
        if self.t_max < 2:
            raise ValueError(f"ChronoLSTM: t_max must be >= 2, got {t_max}")
        super().__init__(input_size, hidden_size, fast)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        H = self.hidden_size
        with torch.no_grad():
            b_f = torch.empty_like(self.bias_ih[:H]).uniform_(1.0, self.t_max - 1.0).log()
            nn.init.zeros_(self.bias_ih)
            nn.init.zeros_(self.bias_hh)
            self.bias_ih[:H] = -b_f  # input gate
            self.bias_ih[H : 2 * H] = b_f  # forget gate

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, t_max={self.t_max}"
