"""Warm-up for anyone's recurrent model: two calls, no Hydra, no MLflow.

    >>> import torch
    >>> from src import warm_up, measure_vaa
    >>> lstm = torch.nn.LSTM(8, 32, num_layers=2, batch_first=True)
    >>> inputs = torch.randn(256, 100, 8)        # your training sequences
    >>> measure_vaa(lstm, inputs).vaa              # 1/32: one attractor
    >>> warm_up(lstm, inputs)                      # the paper's warm-up, in place
    >>> measure_vaa(lstm, inputs).vaa              # more attractors reached
    >>> warm_up(lstm, inputs, method="excite")     # or this project's construction

What is accepted as ``module``:

* the project's networks (:class:`src.rnn.StackedRNN`), warmed exactly as the pipeline
  warms them (full or partial, by their own warmed/plain split);
* ``torch.nn.RNN``, ``torch.nn.GRU`` and ``torch.nn.LSTM``, any number of layers,
  ``batch_first`` either way, on any device. Warm-up is *full* and per layer, as the
  method says: layer l is run alone from its own state with a constant input of its own
  input size. A plain torch module hides its per-layer states, so each layer is run as
  a one-layer module of the same kind through :func:`torch.func.functional_call` with
  that layer's own parameters: gradients reach the module's parameters, and nothing is
  copied. Not supported (a ``ValueError`` says so): ``bidirectional=True`` (a backward
  direction has no "constant input from now on") and ``nn.LSTM(proj_size>0)``. The
  module's inter-layer dropout never acts here: layers are run one at a time.
* any other module called as ``module(x, h0) -> (y, h_n)`` like ``nn.GRU`` (``h0=None``
  meaning its zero state; ``h_n`` a tensor or a tuple of tensors, batch along dimension
  1 when 3-D as in torch's modules, along dimension 0 when 2-D). Its layers are out of
  reach, so it is warmed as one block on its whole state.

Partial warm-up needs the warmed/plain split of the project's networks; for a plain
module, build a :class:`src.rnn.StackedRNN` with ``warm_fraction=0.5`` instead.

``inputs`` are real input sequences, ``(N, L, I)`` when the module is batch-first and
``(L, N, I)`` otherwise (``batch_first=`` overrides what is read from the module).

Two methods, as in the pipeline: ``paper`` (the default: the published algorithm, gradient
steps on VAA*) and ``excite`` (this project's construction: docs/excite.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from src import rules
from src.rnn import StackedRNN
from src.vaa import EPS, Multistability
from src.vaa import measure_vaa as _measure
from src.warmup import paper
from src.warmup.excite import Excitation, select_excitation

__all__ = ["warm_up", "measure_vaa", "Multistability", "Excitation"]

TORCH_RNNS = (nn.RNN, nn.GRU, nn.LSTM)


# --------------------------------------------------------------- adapters
class _TorchLayer:
    """Layer ``index`` of a torch ``nn.RNN``/``nn.GRU``/``nn.LSTM``, run as a one-layer module
    of the same kind on the layer's own parameters. State: ``(h,)`` or ``(h, c)``, each ``(N, H)``."""

    def __init__(self, module: nn.RNNBase, index: int):
        self.module, self.index = module, index
        self.input_size = module.input_size if index == 0 else module.hidden_size
        self.lstm = isinstance(module, nn.LSTM)
        kwargs = {"nonlinearity": module.nonlinearity} if isinstance(module, nn.RNN) else {}
        ref = next(module.parameters())
        with torch.random.fork_rng(devices=[]):  # its own (unused) initial weights draw numbers
            self.shadow = type(module)(self.input_size, module.hidden_size, num_layers=1,
                                       bias=module.bias, **kwargs).to(ref.device, ref.dtype)
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
        self.names = {f"{n}_l0": f"{n}_l{index}" for n in names}

    def __call__(self, x, state=None):
        params = {own: getattr(self.module, theirs) for own, theirs in self.names.items()}
        h0 = None
        if state is not None:
            h0 = tuple(s.unsqueeze(0) for s in state) if self.lstm else state[0].unsqueeze(0)
        y, h_n = functional_call(self.shadow, params, (x, h0))
        return y, (h_n[0][0], h_n[1][0]) if self.lstm else (h_n[0],)


#: Per torch RNN kind, ``(rows, scale)``: the rows of ``weight_hh_l{k}`` (in units of
#: hidden_size) that feed each unit's candidate, in torch's gate order: RNN (h), GRU (r, z, n),
#: LSTM (i, f, g, o); and the gate factor of that feedback at init
#: (``RecurrentCell.excitation_scale``): GRU's reset gate, LSTM's output gate, none for RNN.
TORCH_EXCITATION = {nn.RNN: ((0, 1), 1.0), nn.GRU: ((2, 3), 0.5), nn.LSTM: ((2, 3), 0.5)}


class _TorchExcitable:
    """Layer ``index`` of a torch RNN seen as a cell that ``excite`` can change: its
    excitation block and candidate biases are views of the module's own parameters."""

    def __init__(self, module: nn.RNNBase, index: int):
        self.module, self.index = module, index
        self.hidden_size = module.hidden_size
        self.excitation_rows, self.excitation_scale = next(
            spec for kind, spec in TORCH_EXCITATION.items() if isinstance(module, kind))
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
        self.params = {n: getattr(module, f"{n}_l{index}") for n in names}

    def _rows(self, t: Tensor) -> Tensor:
        first, last = self.excitation_rows
        return t[first * self.hidden_size:last * self.hidden_size]

    def excitation_block(self) -> Tensor:
        return self._rows(self.params["weight_hh"])

    def excitation_biases(self) -> list[Tensor]:
        return [self._rows(self.params[n]) for n in ("bias_ih", "bias_hh") if n in self.params]

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.params)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state[n])


class _Layer:
    """What warm-up and VAA see of one layer: a warmed part and no plain part."""

    def __init__(self, warm):
        self.warm, self.plain = warm, None


class _Adapter:
    """A module seen through the interface of :class:`src.rnn.StackedRNN` that
    :mod:`src.vaa` and :mod:`src.warmup` use: ``recurrent``, ``layers[l].warm``,
    ``warm_parameters``, and the train/eval mode (time-major tensors throughout)."""

    def __init__(self, module: nn.Module, layers: list[_Layer], run_prefixes: Callable):
        self.module, self.layers, self._run_prefixes = module, layers, run_prefixes

    def warm_cells(self) -> list:
        """Per layer, what ``excite`` changes (built when asked: only excite needs it)."""
        if not isinstance(self.module, TORCH_RNNS):
            raise ValueError(f"warm_up(method='excite'): the layers of a "
                             f"{type(self.module).__name__} are out of reach; use it with the "
                             "project's networks or nn.RNN, nn.GRU, nn.LSTM, or method='paper'")
        return [_TorchExcitable(self.module, i) for i in range(self.module.num_layers)]

    @property
    def training(self) -> bool:
        return self.module.training

    def train(self, mode: bool = True):
        self.module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def warm_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def recurrent(self, x: Tensor, states=None, lengths: Tensor | None = None):
        if lengths is not None:
            return self._run_prefixes(x, lengths)
        states = states if states is not None else [None] * len(self.layers)
        new = []
        for layer, s in zip(self.layers, states):
            x, s = layer.warm(x, None if s is None else s[0])
            new.append((s, None))
        return x, new


def _torch_adapter(module: nn.RNNBase) -> _Adapter:
    layers = [_Layer(_TorchLayer(module, i)) for i in range(module.num_layers)]

    def run_prefixes(x, lengths):
        # each sample stops at its own length: a packed sequence gives every layer's state there
        seq: Tensor | PackedSequence = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        states = []
        for layer in layers:
            seq, s = layer.warm(seq)
            states.append((s, None))
        return None, states

    return _Adapter(module, layers, run_prefixes)


class _BlockRunner:
    """A custom ``module(x, h0) -> (y, h_n)``, its state flattened to ``(h,)`` tensors ``(N, D)``."""

    def __init__(self, module: nn.Module, input_size: int):
        self.module, self.input_size = module, input_size
        self.shapes: list[tuple[int, ...]] | None = None
        self.single = True

    def to_flat(self, h_n) -> tuple[Tensor, ...]:
        self.single = isinstance(h_n, Tensor)
        leaves = (h_n,) if self.single else tuple(h_n)
        self.shapes = [t.shape for t in leaves]
        return tuple(t.transpose(0, 1).reshape(t.shape[1], -1) if t.dim() == 3 else t for t in leaves)

    def from_flat(self, state):
        if state is None:
            return None
        leaves = tuple(
            s.reshape(s.shape[0], shape[0], shape[2]).transpose(0, 1) if len(shape) == 3 else s
            for s, shape in zip(state, self.shapes))
        return leaves[0] if self.single else leaves

    def __call__(self, x, state=None):
        y, h_n = self.module(x, self.from_flat(state))
        return y, self.to_flat(h_n)


def _block_adapter(module: nn.Module, input_size: int) -> _Adapter:
    runner = _BlockRunner(module, input_size)

    def run_prefixes(x, lengths):
        # one step at a time; each sample's state is kept once its own prefix has run
        kept, state = None, None
        for t in range(int(lengths.max())):
            _, state = runner(x[t : t + 1], state)
            done = (lengths == t + 1).view(-1, 1)
            kept = state if kept is None else tuple(
                torch.where(done, s, k) for s, k in zip(state, kept))
        return None, [(kept, None)]

    return _Adapter(module, [_Layer(runner)], run_prefixes)


# --------------------------------------------------------------- checks
def _prepare(module, inputs, batch_first: bool | None, who: str):
    """Validate, then ``(network view, time-major inputs, parameters warm-up may change)``."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"{who}: module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(inputs, Tensor):
        raise ValueError(f"{who}: inputs must be a torch.Tensor of input sequences, got "
                         f"{type(inputs).__name__}")
    if inputs.dim() != 3:
        raise ValueError(f"{who}: inputs must be 3-D, (N, L, I) batch-first or (L, N, I), got "
                         f"shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise ValueError(f"{who}: inputs must be floating point, got {inputs.dtype}")
    if batch_first is None:
        batch_first = bool(getattr(module, "batch_first", False))
    x = inputs.transpose(0, 1) if batch_first else inputs
    L, N, size = x.shape
    if L == 0 or N == 0 or size == 0:
        raise ValueError(f"{who}: inputs are empty, shape {tuple(inputs.shape)}")
    if N < 2:
        raise ValueError(f"{who}: VAA compares sequences with each other and needs at least 2, got "
                         f"a batch of {N} (shape {tuple(inputs.shape)}, batch_first={batch_first})")
    if isinstance(module, StackedRNN):
        expected = module.layers[0].input_size
        net = module
    elif isinstance(module, TORCH_RNNS):
        if module.bidirectional:
            raise ValueError(f"{who}: bidirectional modules are not supported: a backward "
                             "direction has no constant input 'from now on' to settle under")
        if getattr(module, "proj_size", 0):
            raise ValueError(f"{who}: nn.LSTM with proj_size={module.proj_size} is not supported")
        expected, net = module.input_size, _torch_adapter(module)
    elif isinstance(module, nn.RNNBase):
        raise ValueError(f"{who}: {type(module).__name__} is not supported; use nn.RNN, nn.GRU, "
                         "nn.LSTM or a module called as module(x, h0) -> (y, h_n)")
    else:
        expected = getattr(module, "input_size", size)
        net = _block_adapter(module, size)
    if size != expected:
        raise ValueError(f"{who}: inputs have {size} features but the module expects "
                         f"input_size={expected}")
    ref = next(module.parameters(), None)
    if ref is not None:
        x = x.to(ref.device, ref.dtype)
    return net, x


# --------------------------------------------------------------- the calls
def measure_vaa(
    module: nn.Module,
    inputs: Tensor,
    *,
    steps: int = 10_000,
    group_size: int | None = None,
    eps: float = EPS,
    seed: int = 0,
    batch_first: bool | None = None,
) -> Multistability:
    """Reachable multistability of ``module`` on real input sequences (docs/method.md, "VAA").

    Each sequence is cut at a random prefix and run from the zero state; then every group
    of ``group_size`` sequences (default: 32, or all of them when fewer) gets one constant
    random input for ``steps`` steps, and the final states are compared. Sequences beyond
    the last whole group are not used.

    Returns ``Multistability(vaa, attractors, settled, fixed_points)``: VAA (1/group_size
    for one attractor, 1 when every state ends apart), the attractor count, the share of
    final states sitting on a fixed point, and the distinct fixed points among them.
    ``seed`` fixes the prefixes and constant inputs and leaves the global random state
    untouched. The module is measured in eval mode and returned in its own mode.
    """
    net, x = _prepare(module, inputs, batch_first, "measure_vaa")
    rules.integer(rules.at_least(1)).check("measure_vaa: steps", steps)
    n = x.shape[1]
    size = group_size if group_size is not None else min(32, n)
    if not isinstance(size, int) or not 2 <= size <= n:
        raise ValueError(f"measure_vaa: group_size={group_size!r} must be an integer between 2 "
                         f"and the {n} sequences given")
    used = n // size * size
    return _measure(net, x[:, :used], steps=steps, group_size=size, eps=eps, seed=seed)


def warm_up(
    module: nn.Module,
    inputs: Tensor,
    *,
    method: str = "paper",
    steps: int = 100,
    lr: float = 1e-2,
    batch_size: int = 32,
    vaa_target: float = 0.95,
    max_horizon: int = 200,
    horizon_growth: int = 10,
    gains: tuple[float, ...] | None = None,
    select_steps: int = 10_000,
    eps: float = EPS,
    seed: int = 0,
    batch_first: bool | None = None,
) -> list[float] | Excitation:
    """Warm ``module`` up in place, as the pipeline does (docs/method.md, docs/excite.md).

    ``method="paper"`` (the default, as in the pipeline): the published algorithm. Each of
    ``steps`` steps draws ``batch_size`` of the ``inputs``, cuts each at a random prefix, runs
    every layer alone from its prefix state under one constant random input for
    T ~ U{1..min(1 + 10k, 200)} steps, and takes an Adam step (``lr``) on mean over layers of
    (VAA* - ``vaa_target``)^2. The defaults are the pipeline's (``conf/warmup/full.yaml``).
    Returns VAA* (mean over layers) at every step; raises ``FloatingPointError`` with the knob
    to turn if the objective becomes NaN or infinite.

    ``method="excite"``: no gradient steps. Candidates are
    the module as built and, for gains from ``gains``, each layer's self-excitation
    (``gain * I`` added to the recurrent weights that feed each unit's own candidate state;
    with the candidate biases as built or zeroed; the same gain on every layer, then each
    layer's gain varied in turn); each is screened by its distinct fixed points at T = 1 000
    (3 000 when nothing settles) on ``inputs`` (groups of 32, drawn with ``seed + 1``), and
    the best few are measured again at T = ``select_steps``; the best is kept
    (:func:`src.warmup.select_excitation`). The gradient method's arguments (``steps``,
    ``lr``, ``batch_size``, ``vaa_target``, the horizons) are refused with it. Returns the :class:`Excitation` chosen
    (``gains`` per layer, all 0: left as built). For the
    project's networks and ``nn.RNN`` (tanh), ``nn.GRU``, ``nn.LSTM``.

    Only the module's own parameters change: for a project network only its warmed
    sub-cells, for any other module those with ``requires_grad`` (paper) or the excitation
    blocks and candidate biases (excite). ``.grad`` is left as it was found. ``seed`` fixes
    the draws and leaves the global random state untouched.
    """
    if method not in rules.METHODS:
        raise ValueError(f"warm_up: method={method!r} must be 'paper' or 'excite'")
    if method == "excite":
        defaults = inspect.signature(warm_up).parameters
        given = [name for name, value in (
            ("steps", steps), ("lr", lr), ("batch_size", batch_size), ("vaa_target", vaa_target),
            ("max_horizon", max_horizon), ("horizon_growth", horizon_growth))
            if value != defaults[name].default]
        if given:
            raise ValueError(f"warm_up: {', '.join(given)} set for method='excite', which takes "
                             "no gradient steps; pass method='paper' for the paper's algorithm")
        return _excite(module, inputs, gains, select_steps, eps, seed, batch_first)
    net, x = _prepare(module, inputs, batch_first, "warm_up")
    for name, value, low in (("steps", steps, 0), ("batch_size", batch_size, 2),
                             ("max_horizon", max_horizon, 1), ("horizon_growth", horizon_growth, 0)):
        rules.integer(rules.at_least(low)).check(f"warm_up: {name}", value)
    rules.POSITIVE.check("warm_up: lr", lr)
    rules.SHARE.check("warm_up: vaa_target", vaa_target)
    n = x.shape[1]
    batch = min(batch_size, n)
    if not net.warm_parameters():
        raise ValueError("warm_up: the module has nothing to warm up (no warmed sub-cells or no "
                         "parameter with requires_grad)")
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return paper.run(
            net, module, lambda: x[:, torch.randperm(n)[:batch].to(x.device)], steps, lr,
            vaa_target, horizon_growth, max_horizon, eps,
            "warm_up: the objective became {loss} at step {step}: lower lr "
            f"(now {lr}) or max_horizon (now {max_horizon})")


def _excite(module, inputs, gains, select_steps, eps, seed, batch_first) -> Excitation:
    net, x = _prepare(module, inputs, batch_first, "warm_up")
    rules.integer(rules.at_least(1)).check("warm_up: select_steps", select_steps)
    if gains is not None and (not gains or not all(isinstance(g, (int, float)) and g > 0
                                                   for g in gains)):
        raise ValueError(f"warm_up: gains={gains!r} must be a non-empty sequence of numbers > 0")
    if isinstance(module, nn.RNN) and module.nonlinearity != "tanh":
        raise ValueError("warm_up(method='excite'): a self-exciting relu unit grows without "
                         "bound; use nonlinearity='tanh' or method='paper'")
    if not net.warm_cells():  # refuses a module whose layers are out of reach, before any work
        raise ValueError("warm_up: the module has nothing to warm up (no warmed sub-cells)")
    n = x.shape[1]
    size = min(32, n)
    with torch.no_grad():
        return select_excitation(net, x[:, :n // size * size],
                                 gains=None if gains is None else tuple(gains),
                                 steps=select_steps, group_size=size, eps=eps, seed=seed + 1)
