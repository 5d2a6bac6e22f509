"""The layer interface every recurrent cell implements.

A cell here is a whole recurrent *layer*, shaped like ``nn.GRU`` with one
layer: time-major input ``x_seq`` of shape ``(L, N, input_size)``, an optional
initial state (``None`` means zeros), and it returns ``(y_seq, state)`` with
``y_seq`` of shape ``(L, N, hidden_size)``. The state is always a tuple of
tensors of shape ``(N, hidden_size)`` (``(h,)`` for most cells, ``(h, c)`` for
the LSTM family).

Stacking, the warmed/plain split of partial warm-up, warm-up itself and the
VAA measurement only ever see this interface, so a new cell is one file that
subclasses :class:`RecurrentCell` and one YAML in ``conf/cell/``.

A subclass provides:

* ``input_projection(x_seq)``: the input part of every gate for *all* time
  steps at once (one matrix product, ``(L, N, G)``);
* ``recurrent_weights()``: the parameters used inside the time loop;
* ``fused_step(gx_t, state, weights)``: the equations of one time step, given
  that step's slice of the input projection; returns ``(new_state, aux)``,
  where ``aux`` holds what the hand-written backward needs (out-of-place
  operations only, so that autograd can differentiate it too);
* ``reset_parameters()``: the cell's initialisation;
* optionally, for the fast path, ``fused_step_backward`` and
  ``fused_weight_grads`` (documented on the class body), or a whole-sequence
  ``sequence_kernel``.

The hooks are called on the cell *instance*, on both paths, so they may read the
cell's hyper-parameters (``self.leak``); the built-in cells write them as static
methods, which is the same call. The layer's output at each step is the first
state tensor ``h`` (``state[0]``), on both paths: a cell whose output differs from
its state is out of this contract.

``step(gx_t, state) -> new_state`` is ``fused_step`` seen through autograd: the
equations are written once and serve both paths. A cell may instead override
``step`` alone; it then always runs the autograd loop.

``forward`` supplies the time loop. It also takes ``lengths`` (``(N,)``
integer tensor): sample ``i`` then stops updating its state after
``lengths[i]`` steps, so the returned state is the state after its own prefix
of the sequence (and later outputs repeat that state). This lets VAA sample the
prefix states of a whole batch in one pass instead of one pass per sequence.
An input held constant in time as an ``expand``ed tensor (VAA's constant
input) is projected once, not once per step.

Two interchangeable time loops, chosen by the constructor argument ``fast``;
both give the same results up to float rounding (tests/test_cells.py checks
outputs and gradients):

* ``fast=False``: autograd records every operation of every step; simple,
  the reference.
* ``fast=True`` (default): one :class:`torch.autograd.Function`,
  :class:`FusedLoop`, for the whole loop. Its forward runs the same
  ``fused_step`` without recording a graph; its backward is the hand-derived
  gradient of one step, run backwards in time, writing the gate gradients of
  all steps into one buffer, and the gradient of the recurrent weights is one
  large matrix product over all steps at the end instead of one small product
  and one accumulation per step. Plain PyTorch operations only: it runs on any
  device and supports ``lengths``, frozen parameters and first-order gradients
  (not double backward). Without gradients (``torch.no_grad()``, e.g. the
  10 000-step VAA runs) it stores nothing. A cell with a library kernel for
  whole sequences (the LSTM) uses that instead when no ``lengths`` are given, and,
  with ``lengths``, runs it once per distinct length when that pays
  (:func:`kernel_by_length`). A built-in cell that names its loop in C++
  (``native``: gru, mgu, rnn, brc, nbrc, and the LSTM's loop) runs its float32 CPU loops
  there (``src/cells/native.cpp``): the same equations without the Python interpreter
  between the operations, equal to the Python loop up to float32 rounding (checked on its
  first use on a machine); without the compiled library, the Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

State = tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    """Base class: one recurrent layer and its time loop."""

    #: Number of tensors in the state tuple (1 for ``(h,)``, 2 for ``(h, c)``).
    state_size: int = 1

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"{type(self).__name__}: input_size and hidden_size must be >= 1, "
                f"got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.fast = fast

    # -- to implement -------------------------------------------------------
    def reset_parameters(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_projection(self, x_seq: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def recurrent_weights(self) -> tuple[Tensor, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fused_step(self, gx_t: Tensor, state: State, weights: tuple[Tensor, ...]):
        """One step of the equations: ``(new_state, aux)``. Out-of-place ops only."""
        raise NotImplementedError  # pragma: no cover - abstract

    #: Optional, for the fast path (``None``: the fast path falls back to autograd):
    #:
    #: ``fused_step_backward(d_state, prev, aux, weights, d_gx_t) -> (d_prev, d_rec_t)``,
    #: one step backwards in time:
    #:
    #: * ``d_state``: gradient of the loss with respect to the step's new state (tuple);
    #: * ``prev``: the state the step started from (tuple); ``aux``: what ``fused_step``
    #:   returned beside the new state; ``weights``: ``recurrent_weights()``;
    #: * ``d_gx_t`` ``(N, G)``: a buffer to *write* (in place) the gradient with respect to
    #:   the step's slice of the input projection;
    #: * returns the gradient with respect to ``prev`` (tuple), and ``d_rec_t``: anything
    #:   more ``fused_weight_grads`` needs (``None`` if nothing).
    fused_step_backward = None

    #: ``fused_weight_grads(d_gx, d_rec, h0, ys, auxes, weights, needs) -> tuple``, once per
    #: sequence, the gradients of ``recurrent_weights()`` (``None`` where not needed):
    #:
    #: * ``d_gx`` ``(L, N, G)``: every step's ``d_gx_t``; ``d_rec``, ``auxes``: sequences over
    #:   time of ``d_rec_t`` and ``aux`` (lists; on the C++ loop of a built-in cell, ``d_rec``
    #:   is the tensor of the ``d_rec_t`` stacked, ``(L, N, *)``);
    #: * ``h0``: the initial ``h``; ``ys`` ``(L, N, H)``: the outputs, so ``h_{t-1}`` is
    #:   ``ys[t-1]`` (:func:`matmul_over_time` forms ``sum_t d[t]^T h_{t-1}``);
    #: * ``needs``: per weight, whether it needs a gradient.
    fused_weight_grads = None

    #: Whether the fast path may hand a whole sequence without ``lengths`` to
    #: ``sequence_kernel(x_seq, state) -> (y_seq, state)`` (a library kernel, e.g.
    #: PyTorch's own LSTM).
    has_sequence_kernel = False

    def sequence_kernel(self, x_seq: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError  # pragma: no cover

    #: Optional: the name of this cell's loop in C++ (``src/cells/native.cpp``: "gru", "mgu",
    #: "rnn", "lstm", "brc", "nbrc"), which computes the equations of ``fused_step`` and
    #: ``fused_step_backward`` without the Python interpreter between them (the same numbers
    #: up to float32 rounding, faster). Used by the fast path only while the class keeps the
    #: hooks of the class that declared it: a subclass that overrides one of them runs its own
    #: Python hooks.
    native: str | None = None

    #: Optional, for ``warmup.method=excite`` (src/warmup/excite.py): the rows of the recurrent weight
    #: ``self.weight_hh`` that feed the candidate state, in units of ``hidden_size`` (``(2, 3)``:
    #: rows 2H..3H). The same rows of the biases (``bias_ih``, ``bias_hh`` or ``bias``, those
    #: the cell has) are the candidate's biases. ``None``: the cell has no such block (BRC and
    #: NBRC are bistable by construction), and excite leaves it as built.
    excitation_rows: tuple[int, int] | None = None
    #: Optional, for ``warmup.method=excite``: the factor by which the cell's gates scale a
    #: unit's feedback into its own candidate at initialisation (1: a plain tanh RNN; 0.5 for
    #: the GRU's reset gate, the MGU's forget gate, the LSTM's output gate, all sigma(0) at
    #: init). A gain g gives a loop gain of about ``g * excitation_scale``: excite's default
    #: ladder skips gains below a loop gain of 1.5, where a unit sits at its bifurcation.
    excitation_scale: float = 1.0

    # -- provided -----------------------------------------------------------
    def excitation_block(self) -> Tensor:
        """The ``(H, H)`` block of ``weight_hh`` through which each unit excites its own
        candidate (a view: adding to it changes the cell)."""
        if self.excitation_rows is None:
            raise ValueError(f"{type(self).__name__} declares no excitation block "
                             "(excitation_rows) for warmup.method=excite")
        first, last = self.excitation_rows
        H = self.hidden_size
        return self.weight_hh[first * H:last * H]

    def excitation_biases(self) -> list[Tensor]:
        """Views of the candidate's biases: the ``excitation_rows`` of each bias vector."""
        self.excitation_block()  # the same refusal for a cell without a block
        first, last = self.excitation_rows
        H = self.hidden_size
        return [b[first * H:last * H] for name in ("bias_ih", "bias_hh", "bias")
                if isinstance(b := getattr(self, name, None), Tensor) and b.dim() == 1]

    def native_ops(self, like: Tensor | None = None):
        """``(forward, backward)`` of the C++ loop for this cell, or ``None``: the Python loop
        (no ``native`` name, hooks overridden since it was declared, no C++ library, or
        ``like``, the input projection, is not a float32 CPU tensor)."""
        if self.native is None:
            return None
        cls = type(self)
        owner = next(c for c in cls.__mro__ if "native" in c.__dict__)
        hooks = ("fused_step", "fused_step_backward", "fused_weight_grads", "recurrent_weights")
        if any(getattr(cls, h) is not getattr(owner, h) for h in hooks):
            return None
        from src.cells import native

        return native.ops(self.native, like, owner)

    def step(self, gx_t: Tensor, state: State) -> State:
        """The recurrent part of one time step (differentiable by autograd)."""
        return self.fused_step(gx_t, state, self.recurrent_weights())[0]

    def zero_state(self, batch: int, like: Tensor) -> State:
        z = like.new_zeros(batch, self.hidden_size)
        return tuple(z for _ in range(self.state_size))

    def forward(
        self, x_seq: Tensor, state: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        if x_seq.dim() != 3 or x_seq.shape[-1] != self.input_size or x_seq.shape[0] < 1:
            raise ValueError(
                f"{type(self).__name__} expects input (L >= 1, N, {self.input_size}), "
                f"got {tuple(x_seq.shape)}"
            )
        if state is None:
            state = self.zero_state(x_seq.shape[1], x_seq)
        state = tuple(state)
        if self.fast and self.has_sequence_kernel:
            if lengths is None:
                return self.sequence_kernel(x_seq, state)
            if x_seq.shape[0] >= MIN_SEGMENT * lengths.numel():
                return kernel_by_length(self, x_seq, state, lengths)
        if x_seq.shape[0] > 1 and x_seq.stride(0) == 0:
            # Input held constant in time (an ``expand``ed tensor, as in VAA):
            # project it once instead of once per step.
            gx = self.input_projection(x_seq[:1]).expand(x_seq.shape[0], -1, -1)
        else:
            gx = self.input_projection(x_seq)
        keep = None
        if lengths is not None:
            steps = torch.arange(x_seq.shape[0], device=x_seq.device).unsqueeze(1)
            keep = (steps < lengths.to(x_seq.device).unsqueeze(0)).unsqueeze(-1)  # (L, N, 1)

        if self.fast and self.fused_step_backward is not None:
            weights = self.recurrent_weights()
            tensors = (gx, *state, *weights)
            if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
                ys, *state = FusedLoop.apply(self, keep, *tensors)
            else:
                ys, state, _ = run_loop(self, gx, state, weights, keep, save=False,
                                        native=self.native_ops(gx))
            return ys, tuple(state)

        outputs = []
        # unbind once: indexing gx[t] inside the loop makes each step's backward
        # write a gradient as large as the whole sequence.
        keeps = keep.unbind(0) if keep is not None else [None] * gx.shape[0]
        for gx_t, keep_t in zip(gx.unbind(0), keeps):
            new = self.step(gx_t, state)
            if keep_t is not None:
                new = tuple(torch.where(keep_t, n, s) for n, s in zip(new, state))
            state = new
            outputs.append(state[0])  # the output is h, as on the fast path
        return torch.stack(outputs), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, fast={self.fast}"


# -- the fast path ------------------------------------------------------------
#: With ``lengths``, a cell with a whole-sequence kernel runs it once per distinct length
#: when the sequence has at least this many steps per sample (so that segments, up to one
#: per sample, average at least this long; decided by the shapes alone, never by the draw of
#: the lengths, so that a run takes one path whatever its random state); shorter segments
#: cost more in per-call overhead than the step-by-step loop. Measured on the LSTM (2 layers, batch 32,
#: 32 distinct lengths, 1 thread): at L = 100 (segments of ~3 steps) the loop is 1.3-1.7x
#: faster; at L = 300 (~10 steps) the segments are 1.3-1.4x faster, at L = 600 1.7-2.3x.
#: 8 also keeps every length of the cpu scale (at most 200, with batches of 16 or more) on the
#: loop, so that its runs give the numbers they gave before the segments existed.
MIN_SEGMENT = 8


def kernel_by_length(cell: RecurrentCell, x_seq: Tensor, state: State, lengths: Tensor):
    """``cell.forward`` with ``lengths`` on a whole-sequence kernel: the samples sorted by
    length, the kernel runs once per distinct length, from the previous one to it, on the
    samples still running. Each sample is run for its own prefix only (half the work of
    masking every step on average), in at most ``N`` library calls instead of one pass of
    Python per step. Outputs past a sample's length repeat its final ``h``, as on the
    other paths; the result is the same up to float rounding."""
    L, N = x_seq.shape[0], x_seq.shape[1]
    if N == 0:
        return x_seq.new_zeros(L, 0, cell.hidden_size), tuple(state)
    lengths = lengths.to(x_seq.device).clamp(max=L)
    order = torch.argsort(lengths, descending=True, stable=True)
    inverse = torch.argsort(order)
    counts = torch.bincount(lengths, minlength=L + 1).tolist()
    x = x_seq.index_select(1, order)
    running = tuple(s.index_select(0, order) for s in state)
    done: tuple[Tensor, ...] | None = None  # the finished samples' states, in sorted order
    ys, start, active = [], 0, N
    for stop in range(L + 1):  # stop = 0: zero-length prefixes keep their initial state
        if stop > start and (counts[stop] or stop == L):  # run the segment start..stop
            if active > 0:
                y, running = cell.sequence_kernel(x[start:stop, :active], running)
            else:
                y = x.new_zeros(stop - start, 0, cell.hidden_size)
            if done is not None:
                y = torch.cat([y, done[0].unsqueeze(0).expand(stop - start, -1, -1)], dim=1)
            ys.append(y)
            start = stop
        if counts[stop]:  # the samples of this length end here
            active -= counts[stop]
            ended = tuple(s[active:] for s in running)
            done = ended if done is None else tuple(
                torch.cat([e, d]) for e, d in zip(ended, done))
            running = tuple(s[:active] for s in running)
    final = tuple(d.index_select(0, inverse) for d in done)
    return torch.cat(ys).index_select(1, inverse), final


def run_loop(cell: RecurrentCell, gx: Tensor, state: State, weights, keep: Tensor | None,
             save: bool, native=None):
    """Forward time loop of ``cell`` without autograd.

    Returns ``(y_seq, final_state, (states, auxes))``; with ``save``, the lists of
    each step's state tensors beyond ``h`` (after ``lengths`` masking; ``h`` is
    in ``y_seq``) and of each step's aux, else empty lists. On the C++ loop
    (``native``, the operators of ``cell.native_ops(gx)``), ``(states, auxes)`` is instead
    the list of those quantities, each stacked over time, as ``native.cpp`` returns them.
    """
    if native is not None:
        with torch.no_grad():
            ys, *rest = native[0](gx, list(state), list(weights), keep, save)
        n = len(state)
        return ys, tuple(rest[:n]), rest[n:]
    outputs, states, auxes = [], [], []
    keeps = keep.unbind(0) if keep is not None else [None] * gx.shape[0]
    with torch.no_grad():
        for gx_t, keep_t in zip(gx.unbind(0), keeps):
            new, aux = cell.fused_step(gx_t, state, weights)
            if keep_t is not None:
                new = tuple(torch.where(keep_t, n, s) for n, s in zip(new, state))
            state = new
            outputs.append(state[0])
            if save:
                states.append(state[1:])
                auxes.append(aux)
        return torch.stack(outputs), state, (states, auxes)


class FusedLoop(torch.autograd.Function):
    """The whole time loop as one autograd node, with a hand-written backward.

    ``apply(cell, keep, gx, *state, *weights) -> (y_seq, *final_state)``: ``cell`` is the
    instance, whose hooks run the steps forwards and backwards.
    """

    @staticmethod
    def forward(ctx, cell, keep, gx, *tensors):
        n = cell.state_size
        state, weights = tuple(tensors[:n]), tuple(tensors[n:])
        native = cell.native_ops(gx)  # the backward runs on the loop the forward ran on
        ys, final, saved = run_loop(cell, gx, state, weights, keep, save=True, native=native)
        # Intermediates (neither inputs nor outputs) may be kept on ctx directly;
        # outputs may not (reference cycle), hence the clones of the final state.
        ctx.cell, ctx.n_state, ctx.saved, ctx.keep, ctx.gx_shape = cell, n, saved, keep, gx.shape
        ctx.native = native
        ctx.save_for_backward(ys, *state, *weights)
        return (ys, *(s.clone() for s in final))

    @staticmethod
    @once_differentiable
    def backward(ctx, d_ys, *d_final):
        cell, n = ctx.cell, ctx.n_state
        ys, *saved = ctx.saved_tensors
        state0, weights = tuple(saved[:n]), tuple(saved[n:])
        keep = ctx.keep
        L = ys.shape[0]
        d_state = tuple(torch.zeros_like(state0[0]) if d is None else d for d in d_final)
        native = ctx.native
        if native is not None:  # the same steps in C++ (native.cpp)
            d_gx, *d_state = native[1](d_ys, list(d_state), ys, list(state0), ctx.saved,
                                       list(weights), keep)
            # d_rec stacked over time (L, N, *): a sequence of the steps' d_rec_t, as on the
            # Python loop; auxes: the steps' aux tuples, made only if the hook reads them
            d_rec = d_state.pop() if len(d_state) > n else [None] * L
            auxes = _StepTuples(ctx.saved[n - 1:], L)
            d_weights = cell.fused_weight_grads(
                d_gx, d_rec, state0[0], ys, auxes, weights, ctx.needs_input_grad[3 + n :]
            )
            return (None, None, d_gx, *d_state, *d_weights)
        states, auxes = ctx.saved
        d_ys = d_ys.unbind(0) if d_ys is not None else None
        keeps = keep.unbind(0) if keep is not None else None
        d_gx = torch.empty(ctx.gx_shape, dtype=ys.dtype, device=ys.device)
        d_gx_t, d_rec = d_gx.unbind(0), [None] * L
        for t in range(L - 1, -1, -1):
            if d_ys is not None:
                d_state = (d_state[0] + d_ys[t], *d_state[1:])
            prev = (ys[t - 1], *states[t - 1]) if t > 0 else state0
            if keeps is not None:  # samples past their length: the state is carried over
                d_around = tuple(torch.where(keeps[t], 0.0, d) for d in d_state)
                d_state = tuple(torch.where(keeps[t], d, 0.0) for d in d_state)
            d_prev, d_rec[t] = cell.fused_step_backward(
                d_state, prev, auxes[t], weights, d_gx_t[t]
            )
            if keeps is not None:
                d_prev = tuple(a + b for a, b in zip(d_prev, d_around))
            d_state = d_prev
        d_weights = cell.fused_weight_grads(
            d_gx, d_rec, state0[0], ys, auxes, weights, ctx.needs_input_grad[3 + n :]
        )
        return (None, None, d_gx, *d_state, *d_weights)


class _StepTuples(Sequence):
    """``[(q[t] for q in stacked) for t in range(length)]``, built on first access: the
    per-step aux tuples of the C++ loop (which returns each quantity stacked over time),
    for ``fused_weight_grads`` hooks that read them."""

    def __init__(self, stacked, length: int):
        self._stacked, self._length, self._steps = stacked, length, None

    def _built(self) -> list:
        if self._steps is None:
            steps = [s.unbind(0) for s in self._stacked]
            self._steps = list(zip(*steps)) if steps else [()] * self._length
        return self._steps

    def __getitem__(self, t):
        return self._built()[t]

    def __len__(self) -> int:
        return self._length


def matmul_over_time(d: Tensor, h0: Tensor, ys: Tensor) -> Tensor:
    """``sum_t d[t]^T h_{t-1}`` with ``h_{-1} = h0``: the gradient of a recurrent matrix
    ``W`` in ``h_{t-1} W^T`` given the gradients ``d`` ``(L, N, G)`` of that product,
    as one large matrix product instead of one per step."""
    grad = d[0].t() @ h0
    if d.shape[0] > 1:
        grad.addmm_(d[1:].flatten(0, 1).t(), ys[:-1].flatten(0, 1))
    return grad
