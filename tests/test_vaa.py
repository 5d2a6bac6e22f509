"""VAA, the attractor count and VAA*: invariants of the measures (docs/method.md)."""

import pytest
import torch

from src.vaa import measure_vaa, pairwise_distance, vaa, vaa_star


def clusters(k: int, per: int, dim: int = 8, spread: float = 0.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g, dtype=torch.float64) * 3
    points = centres.repeat_interleave(per, dim=0)
    return points + spread * torch.randn(points.shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 5, 32])
def test_identical_states_give_one_over_n(n):
    states = torch.ones(n, 6, dtype=torch.float64)
    assert vaa(states).item() == pytest.approx(1 / n)


@pytest.mark.parametrize("k,per", [(1, 32), (4, 8), (8, 4), (32, 1)])
def test_k_separated_clusters_give_k_over_n(k, per):
    states = clusters(k, per, spread=1e-7)  # within a cluster: far below eps = 1e-4
    n = k * per
    assert vaa(states).item() == pytest.approx(k / n)
    assert n * vaa(states).item() == pytest.approx(k)  # the attractor count


def test_unequal_clusters():
    # one cluster of 3, one of 1: (3 * 1/3 + 1 * 1) / 4 = 1/2
    states = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
    assert vaa(states).item() == pytest.approx(0.5)


def test_vaa_star_close_to_vaa_on_identical_and_separated_states():
    identical = torch.zeros(16, 4, dtype=torch.float64)
    assert vaa_star(identical).item() == pytest.approx(1 / 16, rel=1e-3)
    # VAA* applies tanh first: keep the clusters well inside tanh's linear range apart
    separated = clusters(4, 4, dim=16, spread=1e-8) / 10
    assert vaa_star(separated).item() == pytest.approx(vaa(torch.tanh(separated)).item(), abs=0.01)
    all_apart = torch.eye(16, dtype=torch.float64)
    assert vaa_star(all_apart).item() == pytest.approx(1.0, abs=0.01)


def test_vaa_star_has_finite_gradients_even_for_identical_states():
    for states in (torch.zeros(8, 3, dtype=torch.float64), clusters(2, 4, spread=1e-3)):
        states = states.clone().requires_grad_(True)
        vaa_star(states).backward()
        assert states.grad is not None and torch.isfinite(states.grad).all()
    # and the gradient actually pushes apart states that are close but not within eps
    near = (torch.zeros(4, 2, dtype=torch.float64) + torch.arange(4.0).unsqueeze(1) * 1e-3)
    near.requires_grad_(True)
    vaa_star(near).backward()
    assert near.grad.abs().sum() > 0


def test_pairwise_distance_matches_cdist():
    s = torch.randn(10, 5, dtype=torch.float64)
    assert torch.allclose(pairwise_distance(s), torch.cdist(s, s), atol=1e-5)


class _Attractors(torch.nn.Module):
    """A toy 'network' with known attractors: the state converges to the sign of its prefix's
    first input, whatever the constant input (two attractors), or to 0 (one attractor)."""

    def __init__(self, bistable: bool):
        super().__init__()
        self.bistable = bistable

    def recurrent(self, x, states=None, lengths=None):
        if states is None:  # prefix run: remember the sign of the first input
            s = torch.sign(x[0]) if self.bistable else torch.zeros_like(x[0])
            return x, [(s,)]
        return x, [(states[0][0] * 0.5 + 0.5 * states[0][0].sign(),)]


def test_measure_vaa_counts_the_attractors_reached():
    x = torch.randn(20, 64, 1, generator=torch.Generator().manual_seed(0))
    x[0, ::2] = 1.0
    x[0, 1::2] = -1.0
    m = measure_vaa(_Attractors(bistable=True), x, steps=50, group_size=32)
    assert m.attractors == pytest.approx(2.0) and m.vaa == pytest.approx(2 / 32)
    assert m.settled == 1.0 and m.fixed_points == pytest.approx(2.0)
    m = measure_vaa(_Attractors(bistable=False), x, steps=50, group_size=32)
    assert m.attractors == pytest.approx(1.0) and m.settled == 1.0


class _Rotation(torch.nn.Module):
    """A toy 'network' whose prefix states keep rotating (a cycle, never a fixed point) when
    ``period`` > 1, or slowly drift (a transient far slower than T) when ``drift`` is set."""

    def __init__(self, period: int = 0, drift: float = 0.0):
        super().__init__()
        self.period, self.drift = period, drift

    def recurrent(self, x, states=None, lengths=None):
        if states is None:  # distinct prefix states on the unit circle
            a = x[0, :, :1] * 3.0
            return x, [(torch.cat([a.cos(), a.sin()], dim=1),)]
        s = states[0][0]
        for _ in range(x.shape[0]):
            if self.period:
                t = 2 * torch.pi / self.period
                c, si = torch.cos(torch.tensor(t)), torch.sin(torch.tensor(t))
                s = torch.stack([c * s[:, 0] - si * s[:, 1], si * s[:, 0] + c * s[:, 1]], dim=1)
            else:
                s = s * (1.0 - self.drift)
        return x, [(s,)]


def test_states_that_cycle_or_drift_are_counted_but_not_settled():
    """VAA counts every distinct final state; ``settled`` and ``fixed_points`` keep only the
    states that sit on a fixed point: a cycle (period 3) and a drift of 1e-5 per step (far too
    slow to merge within T, so VAA calls them distinct) are not attractors."""
    x = torch.randn(10, 32, 1, generator=torch.Generator().manual_seed(1))
    for moving in (_Rotation(period=3), _Rotation(drift=1e-5)):
        m = measure_vaa(moving, x, steps=300, group_size=32, chunk=100)
        assert m.vaa > 0.9, "distinct states are distinct whatever they do"
        assert m.settled == 0.0 and m.fixed_points == 0.0
    still = measure_vaa(_Rotation(drift=0.0), x, steps=300, group_size=32, chunk=100)
    assert still.settled == 1.0 and still.fixed_points == pytest.approx(still.attractors)


def test_settled_is_relative_to_the_state_size():
    """An LSTM cell state of 100 moving in its last float32 bit is on a fixed point."""
    from src.vaa import is_settled

    big = torch.full((2, 3), 100.0)
    jitter = big + torch.tensor([[7.6e-6, 0, 0], [1e-2, 0, 0]])
    assert is_settled(big, jitter, big).tolist() == [True, False]


def test_measure_vaa_is_repeatable_and_leaves_global_rng_alone():
    x = torch.randn(20, 32, 1)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = measure_vaa(_Attractors(True), x, steps=10, group_size=32, seed=5)
    assert torch.equal(before, torch.get_rng_state())
    assert a == measure_vaa(_Attractors(True), x, steps=10, group_size=32, seed=5)
    with pytest.raises(ValueError, match="group_size"):
        measure_vaa(_Attractors(True), torch.randn(20, 33, 1), steps=10, group_size=32)


def test_vaa_distances_are_exact_for_large_batches():
    # torch.cdist's matmul shortcut (used for > 25 rows) has rounding errors above eps:
    # identical float32 states of norm ~1 must still count as one attractor.
    states = torch.rand(1, 64).expand(64, 64).contiguous()
    assert vaa(states).item() == pytest.approx(1 / 64)


def test_measure_vaa_early_exit_keeps_the_result():
    """Stopping once no state moves over a chunk gives the final states of running all T steps
    to far below eps, and the same VAA: on an untrained and on a strongly multistable network."""
    import pytorch_lightning as pl

    from src.cells.gru import GRU
    from src.rnn import StackedRNN
    from src.vaa import settled_states

    for warm in (0.0, 1.0):
        pl.seed_everything(0, verbose=False)
        net = StackedRNN(GRU, 1, 8, 2, 1, warm_fraction=warm)
        if warm:
            with torch.no_grad():  # a strongly self-exciting recurrence: many fixed points
                for layer in net.layers:
                    layer.warm.weight_hh.mul_(4)
        x = torch.randn(30, 32, 1)
        calls = []
        recurrent = net.recurrent
        net.recurrent = lambda *a, _c=calls, _r=recurrent, **k: _c.append(1) or _r(*a, **k)
        early, early_settled = settled_states(net, x, steps=3_333, group_size=32, chunk=100)
        if not warm:  # the untrained network settles: it did stop early (35 calls otherwise)
            assert len(calls) < 20
        full, full_settled = settled_states(net, x, steps=3_333, group_size=32, chunk=10_000)
        assert (early - full).abs().max() < 1e-5  # ``full``: no early exit
        assert torch.equal(early_settled, full_settled)
        if not warm:
            assert early_settled.all()
        assert vaa(early) == vaa(full)


def test_rounding_flicker_is_frozen_but_motion_is_not():
    """A saturated float32 state may flicker between two adjacent floats forever (measured:
    1.19e-7 near 1 on a tanh RNN at init); the early exit must see it as settled, while a
    move of a few 1e-7 at size 0.01, or of 1e-6 anywhere, is motion."""
    from src.vaa import frozen

    start = torch.tensor([[0.9999, -0.75, 1e-3, 120.0]])
    up_one = torch.nextafter(start, torch.full_like(start, float("inf")))
    assert frozen(start, up_one) and frozen(up_one, start) and frozen(start, start)
    assert not frozen(start, start + torch.tensor([[0.0, 0.0, 3e-7, 0.0]]))
    assert not frozen(start, start + torch.tensor([[1e-6, 0.0, 0.0, 0.0]]))
    assert not frozen(start, start + torch.tensor([[0.0, 0.0, 0.0, 1e-4]]))
