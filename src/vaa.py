"""Reachable multistability: VAA, the attractor count, and the differentiable VAA*.

VAA ("variability amongst attractors", docs/method.md) asks how many distinct
attractors a network reaches from relevant states:

1. take N input sequences, cut each at a random prefix length c_i in 1..L and
   run the network on the prefix from the zero state: state h_i;
2. feed one constant input u ~ N(0, I) to every sample for T steps: state s_i;
3. VAA = (1/N) sum_i 1 / #{j : ||s_i - s_j|| < eps}.

VAA is 1/N when every sample lands on one attractor, k/N for k well-separated
attractors, 1 when all differ; N * VAA is the *attractor count*.

VAA* replaces the hard count by a soft one so that warm-up can follow its
gradient: s_i = tanh(state_i), C_ij = 1 - relu(d_ij - eps) / (d_ij + 1e-6),
VAA* = (1/N) sum_i 1 / sum_j C_ij.

The first two functions are pure tensor functions; ``sample_prefix_states``
and ``measure_vaa`` run a network (anything with the ``StackedRNN``
interface of ``src/rnn.py``) to produce the states they score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

EPS = 1e-4
#: Largest change of any state over one chunk of constant input that counts as settled,
#: beyond ``FLICKER_ULPS`` units in the last place of its value (rounding flicker: ``frozen``).
SETTLED = 1e-7
FLICKER_ULPS = 2
#: Largest relative change over one step of a state counted as a fixed point.
STEP_TOL = 1e-6
#: Steps looked ahead, and the largest relative change over them, of a fixed point.
SETTLE_WINDOW = 200
WINDOW_TOL = 1e-5


def vaa(states: Tensor, eps: float = EPS) -> Tensor:
    """VAA of final states ``(N, D)``: mean over samples of 1 / (number of samples within eps)."""
    # all pairs in one op; the exact (non-matmul) mode: the matmul shortcut's rounding
    # error (~1e-3 for float32 states of norm ~1) exceeds eps and would split attractors
    d = torch.cdist(states, states, compute_mode="donot_use_mm_for_euclid_dist")
    counts = (d < eps).sum(dim=1).to(states.dtype)
    return (1.0 / counts).mean()


def pairwise_distance(s: Tensor) -> Tensor:
    """Euclidean distances ``(N, N)`` with a finite gradient at zero distance."""
    sq = (s.unsqueeze(1) - s.unsqueeze(0)).pow(2).sum(-1)
    # sqrt'(0) is infinite; the tiny floor (1e-12 -> distance 1e-6 << eps) keeps
    # the gradient of the diagonal (and of identical states) finite.
    return torch.sqrt(sq + 1e-12)


def vaa_star(states: Tensor, eps: float = EPS) -> Tensor:
    """Differentiable surrogate of VAA for final states ``(N, D)`` (docs/method.md, "VAA*")."""
    s = torch.tanh(states)
    d = pairwise_distance(s)
    close = 1.0 - torch.relu(d - eps) / (d + 1e-6)
    return (1.0 / close.sum(dim=1)).mean()


def flat_state(states) -> Tensor:
    """Concatenate a nested structure of state tensors ``(N, *)`` into ``(N, D)``."""
    if isinstance(states, Tensor):
        return states
    parts = [flat_state(s) for s in states if s is not None]
    return torch.cat(parts, dim=-1)


def prefix_lengths(seq_len: int, n: int, generator: torch.Generator | None, device=None) -> Tensor:
    """Prefix lengths c_i drawn uniformly in 1..seq_len."""
    c = torch.randint(1, seq_len + 1, (n,), generator=generator)
    return c.to(device) if device is not None else c


def sample_prefix_states(net, inputs: Tensor, lengths: Tensor):
    """Per-layer states after each sample's own prefix, for the whole batch in one pass.

    ``inputs`` is time-major ``(L, N, I)``; only the first ``max(lengths)`` steps are run.
    """
    horizon = int(lengths.max())
    _, states = net.recurrent(inputs[:horizon], lengths=lengths)
    return states


class Multistability(NamedTuple):
    """One VAA measurement (averaged over groups).

    * ``vaa``: docs/method.md's VAA, every final state counted, moving or not;
    * ``attractors``: ``group_size * vaa``, the number of distinct final states reached;
    * ``settled``: the share of final states that sit on a fixed point (:func:`is_settled`);
      states that still move (a cycle, chaos, or a transient slower than ``steps``) are
      not attractors in the strict sense, even when VAA counts them as distinct;
    * ``fixed_points``: the number of distinct fixed points among the settled states
      (what ``attractors`` would be if moving states were not counted).
    """

    vaa: float
    attractors: float
    settled: float
    fixed_points: float


def is_settled(state: Tensor, next_state: Tensor, later_state: Tensor) -> Tensor:
    """Per sample, whether a state ``(N, D)`` sits on a fixed point of the constant-input map,
    given the state one step and ``SETTLE_WINDOW`` steps later.

    Two conditions, both relative to the state's size (``|x| / (1 + |s|)``, so an LSTM
    cell state of 100 is held to its float32 resolution, not to an absolute bound):

    * one step moves it by at most ``STEP_TOL`` (1e-6): no cycle, no chaos;
    * ``SETTLE_WINDOW`` (200) steps move it by at most ``WINDOW_TOL`` (1e-5 = eps / 10): no
      slow drift that a single step would hide (a drift of 1e-5 per step, which would take
      a million steps to merge two states 10 apart, is caught).
    """
    scale = 1.0 + state.abs()
    step = ((next_state - state).abs() / scale).amax(dim=1)
    drift = ((later_state - state).abs() / scale).amax(dim=1)
    return (step <= STEP_TOL) & (drift <= WINDOW_TOL)


def score(final: Tensor, settled: Tensor, group_size: int, eps: float = EPS) -> Multistability:
    """:class:`Multistability` of final states ``(G * group_size, D)`` and their settled mask."""
    groups = final.shape[0] // group_size
    final = final.reshape(groups, group_size, -1)
    settled = settled.reshape(groups, group_size)
    values, fixed = [], []
    for g in range(groups):
        values.append(float(vaa(final[g], eps)))
        on_fixed = final[g][settled[g]]
        fixed.append(float(vaa(on_fixed, eps)) * on_fixed.shape[0] if on_fixed.shape[0] else 0.0)
    v = sum(values) / groups
    return Multistability(v, v * group_size, float(settled.float().mean()), sum(fixed) / groups)


def vaa_metrics(m: Multistability) -> dict[str, float]:
    """The MLflow metrics of one measurement (docs/usage.md): ``vaa``, ``attractors``,
    ``settled`` and ``fixed_points``."""
    return m._asdict()


#: The MLflow step of each measurement of a run (docs/usage.md): 0 at initialisation, 1 after
#: warm-up (the same network as 0 when there is none), 1 + e after supervised epoch e.
INIT_STEP, WARMUP_STEP = 0, 1


def epoch_step(epoch: int) -> int:
    """The step of the measurement after supervised epoch ``epoch`` (1-based)."""
    return 1 + epoch


@dataclass(frozen=True)
class VAAMeter:
    """The measurement of a run, configured once (``vaa.*``) and shared by both stages:
    ``meter(net)`` measures ``net`` on the run's fixed inputs, on whatever device the net is."""

    inputs: Tensor
    steps: int = 10_000
    group_size: int = 32
    eps: float = EPS
    seed: int = 0

    def __call__(self, net) -> Multistability:
        device = next(net.parameters()).device
        return measure_vaa(net, self.inputs.to(device), steps=self.steps,
                           group_size=self.group_size, eps=self.eps, seed=self.seed)


@torch.no_grad()
def measure_vaa(
    net,
    inputs: Tensor,
    steps: int = 10_000,
    group_size: int = 32,
    eps: float = EPS,
    seed: int = 0,
    chunk: int = 500,
) -> Multistability:
    """VAA, attractor count and settled share of ``net``, averaged over groups of ``group_size``.

    ``inputs`` ``(L, G * group_size, I)`` holds G groups; each group gets its own
    prefix lengths and its own constant input u, and all groups run side by side
    in one batch (:func:`settled_states`). Returns a :class:`Multistability`
    ``(vaa, attractors, settled, fixed_points)``; ``vaa, attractors = result[:2]`` is the
    measure of docs/method.md. A fixed ``seed`` makes repeated measurements of the same network
    identical and leaves the global random state untouched.
    """
    total = inputs.shape[1]
    if total % group_size:
        raise ValueError(f"measure_vaa: {total} sequences is not a multiple of group_size={group_size}")
    final, settled = settled_states(net, inputs, steps, group_size, seed, chunk)
    return score(final, settled, group_size, eps)


def measurement_draws(inputs: Tensor, group_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """The random draws of one VAA measurement of ``inputs`` ``(L, G * group_size, I)``, from
    ``seed`` alone: each sequence's prefix length ``(G * group_size,)`` and each group's
    constant input ``(G, 1, I)``."""
    L, total, input_size = inputs.shape
    gen = torch.Generator().manual_seed(seed)
    lengths = prefix_lengths(L, total, gen, inputs.device)
    u = torch.randn(total // group_size, 1, input_size, generator=gen).to(inputs)
    return lengths, u


def frozen(start: Tensor, end: Tensor) -> bool:
    """Whether no state moved over a chunk of constant input, up to float32 rounding: by at
    most ``SETTLED`` (1e-7) plus ``FLICKER_ULPS`` (2) units in the last place of its value.
    A float32 fixed point need not be a fixed point of the rounded map: a saturated unit
    can flicker between two adjacent floats forever (1.19e-7 near 1, measured on a tanh
    RNN at init), which an absolute bound of 1e-7 never let stop. A drift at the bound over
    all the remaining chunks (at most T / chunk = 20 by default) would move a state of size
    1 by about 1e-5, a tenth of eps, so the count of attractors stands."""
    size = start.abs()
    ulp = torch.nextafter(size, torch.full_like(size, float("inf"))) - size
    return bool(((end - start).abs() <= SETTLED + FLICKER_ULPS * ulp).all())


@torch.no_grad()
def settled_states(net, inputs: Tensor, steps: int, group_size: int, seed: int = 0,
                   chunk: int = 500) -> tuple[Tensor, Tensor]:
    """Steps 2-3 of VAA: prefix states, then ``steps`` steps of one constant input per group.

    Returns the flattened final states ``(G * group_size, D)`` and, per sample, whether it
    has settled on a fixed point (:func:`is_settled`). The constant-input run is done in
    chunks of ``chunk`` steps so that memory stays flat whatever ``steps`` is; once no state
    moves by more than ``SETTLED`` over a chunk, the rest is skipped (see the loop).
    """
    L, total, input_size = inputs.shape
    groups = total // group_size
    lengths, u = measurement_draws(inputs, group_size, seed)
    u = u.expand(groups, group_size, input_size).reshape(1, total, input_size)

    was_training = net.training
    net.eval()
    states = sample_prefix_states(net, inputs, lengths)
    done = 0
    current = start = flat_state(states)
    while done < steps:
        start = current
        n = min(chunk, steps - done)
        _, states = net.recurrent(u.expand(n, total, input_size), states)
        done += n
        current = flat_state(states)
        if done < steps and frozen(start, current):
            # Early exit: every sample sits on a fixed point (see ``frozen``). Cycles and chaos
            # never stop early.
            break
    # a short look further tells fixed points from cycles, chaos and slow drift; the steps
    # are not counted in ``steps``, and the states returned are those after ``steps``
    _, after_one = net.recurrent(u, states)
    _, after_window = net.recurrent(u.expand(SETTLE_WINDOW - 1, total, input_size), after_one)
    net.train(was_training)
    return current, is_settled(current, flat_state(after_one), flat_state(after_window))
