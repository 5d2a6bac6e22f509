"""Recurrent cells: parity with their equations (docs/method.md, "Cells") and with PyTorch,
initialisation, gradients, ``lengths``, state passing and the fast time loop."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.func import functional_call

from src.cells import BRC, GRU, LSTM, MGU, NBRC, RNN, ChronoLSTM
from src.cells.base import MIN_SEGMENT, kernel_by_length

CONF = Path(__file__).resolve().parents[1] / "conf" / "cell"
YAMLS = sorted(CONF.glob("*.yaml"))
CELLS = {
    "rnn": RNN,
    "gru": GRU,
    "lstm": LSTM,
    "chrono": ChronoLSTM,
    "mgu": MGU,
    "brc": BRC,
    "nbrc": NBRC,
}
L, N, I, H = 7, 3, 4, 5
sig = torch.sigmoid


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny; with a second thread, a busy machine makes every small
    matrix product wait for a descheduled worker (milliseconds per product)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- the equations, written out independently of src/cells ----------------------
def ref_rnn(c, x, h):
    return (torch.tanh(x @ c.weight_ih.T + c.bias_ih + h @ c.weight_hh.T + c.bias_hh),)


def ref_gru(c, x, h):
    Wr, Wz, Wn = c.weight_ih.chunk(3)
    Ur, Uz, Un = c.weight_hh.chunk(3)
    bir, biz, bin_ = c.bias_ih.chunk(3)
    bhr, bhz, bhn = c.bias_hh.chunk(3)
    r = sig(x @ Wr.T + bir + h @ Ur.T + bhr)
    z = sig(x @ Wz.T + biz + h @ Uz.T + bhz)
    n = torch.tanh(x @ Wn.T + bin_ + r * (h @ Un.T + bhn))
    return ((1 - z) * n + z * h,)


def ref_lstm(c, x, state):
    h, cc = state
    g = x @ c.weight_ih.T + c.bias_ih + h @ c.weight_hh.T + c.bias_hh
    i, f, gg, o = g.chunk(4, 1)
    c_new = sig(f) * cc + sig(i) * torch.tanh(gg)
    return sig(o) * torch.tanh(c_new), c_new


def ref_mgu(c, x, h):
    Wf, Wh = c.weight_ih.chunk(2)
    Uf, Uh = c.weight_hh.chunk(2)
    bf, bh = c.bias.chunk(2)
    f = sig(x @ Wf.T + h @ Uf.T + bf)
    h_tilde = torch.tanh(x @ Wh.T + (f * h) @ Uh.T + bh)
    return ((1 - f) * h + f * h_tilde,)


def ref_brc(c, x, h):
    Uc, Ua, Uh = c.weight_ih.chunk(3)
    bc, ba, bh = c.bias.chunk(3)
    cg = sig(x @ Uc.T + c.w_c * h + bc)
    a = 1 + torch.tanh(x @ Ua.T + c.w_a * h + ba)
    return (cg * h + (1 - cg) * torch.tanh(x @ Uh.T + a * h + bh),)


def ref_nbrc(c, x, h):
    Uc, Ua, Uh = c.weight_ih.chunk(3)
    Wc, Wa = c.weight_hh.chunk(2)
    bc, ba, bh = c.bias.chunk(3)
    cg = sig(x @ Uc.T + h @ Wc.T + bc)
    a = 1 + torch.tanh(x @ Ua.T + h @ Wa.T + ba)
    return (cg * h + (1 - cg) * torch.tanh(x @ Uh.T + a * h + bh),)


REF = {
    "rnn": ref_rnn,
    "gru": ref_gru,
    "lstm": ref_lstm,
    "chrono": ref_lstm,
    "mgu": ref_mgu,
    "brc": ref_brc,
    "nbrc": ref_nbrc,
}


def run_ref(name, cell, x, state):
    ys = []
    for x_t in x:
        state = REF[name](cell, x_t, state[0] if cell.state_size == 1 else state)
        ys.append(state[0])
    return torch.stack(ys), tuple(state)


def make(name, fast=True, seed=0, i=I, h=H, perturb=0.3):
    """A float64 cell, parameters moved off their init (ones, zeros) so every term counts."""
    torch.manual_seed(seed)
    cell = CELLS[name](i, h, fast=fast).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(perturb * torch.randn_like(p))
    return cell


def rand_state(cell, n=N, requires_grad=False):
    return tuple(
        torch.randn(n, cell.hidden_size, dtype=torch.float64, requires_grad=requires_grad)
        for _ in range(cell.state_size)
    )


# -- parity --------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", CELLS)
def test_equations(name, fast):
    cell = make(name, fast)
    x = torch.randn(L, N, I, dtype=torch.float64)
    for state in (None, rand_state(cell)):
        y, s = cell(x, state)
        with torch.no_grad():  # the path that stores nothing for backward
            y_ng, _ = cell(x, state)
        torch.testing.assert_close(y_ng, y, atol=1e-13, rtol=1e-13)
        ref_y, ref_s = run_ref(
            name,
            cell,
            x,
            state or tuple(torch.zeros(N, H, dtype=torch.float64) for _ in range(cell.state_size)),
        )
        assert y.shape == (L, N, H) and len(s) == cell.state_size
        torch.testing.assert_close(y, ref_y, atol=1e-6, rtol=0)
        for a, b in zip(s, ref_s):
            assert a.shape == (N, H)
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize(
    "name,torch_cls", [("gru", nn.GRU), ("lstm", nn.LSTM), ("rnn", nn.RNN), ("chrono", nn.LSTM)]
)
def test_equals_pytorch(name, torch_cls, fast):
    cell = make(name, fast)
    ref = torch_cls(I, H).double()
    with torch.no_grad():
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, p + "_l0").copy_(getattr(cell, p))
    x = torch.randn(L, N, I, dtype=torch.float64)
    state = rand_state(cell)
    y, s = cell(x, state)
    if cell.state_size == 2:
        ref_y, ref_s = ref(x, tuple(t.unsqueeze(0) for t in state))
    else:
        ref_y, ref_s = ref(x, state[0].unsqueeze(0))
        ref_s = (ref_s,)
    torch.testing.assert_close(y, ref_y, atol=1e-10, rtol=0)
    for a, b in zip(s, ref_s):
        torch.testing.assert_close(a, b.squeeze(0), atol=1e-10, rtol=0)


# -- initialisation ----------------------------------------------------------------
def xavier_bound(w):
    return math.sqrt(6.0 / (w.shape[0] + w.shape[1]))


def test_gru_init():
    cell = GRU(6, 8)
    for w in cell.weight_hh.detach().chunk(3):
        torch.testing.assert_close(w @ w.T, torch.eye(8), atol=1e-5, rtol=0)
    for w in cell.weight_ih.detach().chunk(3):
        assert w.abs().max() <= xavier_bound(w)
    assert not cell.bias_ih.any() and not cell.bias_hh.any()


@pytest.mark.parametrize("t_max", [None, 3, 50, 600])
def test_chrono_init(t_max):
    cell = ChronoLSTM(2, 64, t_max=t_max)
    T = 100 if t_max is None else t_max
    b_i, b_f, b_g, b_o = cell.bias_ih.detach().chunk(4)
    assert (b_f >= math.log(1) - 1e-6).all() and (b_f <= math.log(T - 1) + 1e-6).all()
    assert b_f.std() > 0 or T == 2
    torch.testing.assert_close(b_i, -b_f)
    assert not b_g.any() and not b_o.any()
    assert not cell.bias_hh.any()
    assert cell.t_max == T
    with pytest.raises(ValueError):
        ChronoLSTM(2, 4, t_max=1)


def test_brc_mgu_nbrc_init():
    brc, mgu, nbrc = BRC(6, 8), MGU(6, 8), NBRC(6, 8)
    assert (brc.w_c == 1).all() and (brc.w_a == 1).all()
    for cell in (brc, mgu, nbrc):
        assert not cell.bias.any()
        blocks = list(cell.weight_ih.detach().chunk(cell.weight_ih.shape[0] // 8))
        if hasattr(cell, "weight_hh"):
            blocks += list(cell.weight_hh.detach().chunk(cell.weight_hh.shape[0] // 8))
        for w in blocks:
            assert w.abs().max() <= xavier_bound(w) and w.std() > 0.3 * xavier_bound(w)


def test_reset_parameters_restores_init():
    cell = BRC(3, 4)
    with torch.no_grad():
        cell.w_c.zero_()
    cell.reset_parameters()
    assert (cell.w_c == 1).all()


# -- gradients -----------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", CELLS)
def test_gradcheck(name, fast):
    cell = make(name, fast, i=3, h=3)
    names = [n for n, _ in cell.named_parameters()]
    params = tuple(p.detach().requires_grad_() for p in cell.parameters())
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    state = rand_state(cell, n=2, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, *tensors):
        st, ps = tensors[: cell.state_size], tensors[cell.state_size :]
        y, s = functional_call(cell, dict(zip(names, ps)), (x, st, lengths))
        return (y, *s)

    assert torch.autograd.gradcheck(f, (x, *state, *params))


@pytest.mark.parametrize("frozen", ["input", "recurrent"])
@pytest.mark.parametrize("with_lengths", [True, False], ids=["lengths", "full"])
@pytest.mark.parametrize("name", CELLS)
def test_fast_equals_plain(name, with_lengths, frozen):
    """Outputs and all gradients, with an initial state and one weight frozen."""
    results = []
    for fast in (True, False):
        cell = make(name, fast)
        weight = cell.weight_ih if frozen == "input" else cell.recurrent_weights()[0]
        weight.requires_grad_(False)  # partially frozen: the other gradients are unchanged
        torch.manual_seed(1)
        x = torch.randn(L, N, I, dtype=torch.float64, requires_grad=True)
        state = rand_state(cell, requires_grad=True)
        y, s = cell(x, state, torch.tensor([L, 3, 1]) if with_lengths else None)
        loss = (y * torch.randn_like(y)).sum() + sum((t * torch.randn_like(t)).sum() for t in s)
        wrt = [x, *state, *(p for p in cell.parameters() if p.requires_grad)]
        results.append((y, *s, *torch.autograd.grad(loss, wrt)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_float32_fast_equals_plain(name):
    """In float32, the precision of the runs (and of oneDNN's LSTM kernel on CPU)."""
    results = []
    for fast in (True, False):
        cell = make(name, fast).float()
        x = torch.randn(L, N, I, generator=torch.Generator().manual_seed(4), requires_grad=True)
        y, s = cell(x)
        loss = y.pow(2).sum() + s[-1].sum()
        results.append((y, *s, *torch.autograd.grad(loss, [x, *cell.parameters()])))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CELLS)
def test_long_gradient(name):
    """Gradients over a few hundred steps: finite, and the same on both paths."""
    grads = []
    for fast in (True, False):
        cell = make(name, fast, i=2, h=8, perturb=0.1)
        x = torch.randn(300, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        _, s = cell(x, lengths=torch.tensor([300, 250, 120, 7]))
        grads.append(torch.autograd.grad(s[0].pow(2).sum(), list(cell.parameters())))
    for a, b in zip(*grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("name", CELLS)
def test_gradient_only_through_final_state(name):
    """The warm-up loss sees final states only (no output gradient): both paths agree."""
    grads = []
    for fast in (True, False):
        cell = make(name, fast)
        x = torch.randn(L, N, I, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        _, s = cell(x)
        grads.append(torch.autograd.grad(s[-1].pow(2).sum(), list(cell.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


# -- lengths, state passing ------------------------------------------------------------------
@pytest.mark.parametrize("name", [c for c in CELLS if make(c, True).has_sequence_kernel])
def test_kernel_by_length_equals_plain(name):
    """A whole-sequence kernel run once per distinct length (``kernel_by_length``, what the
    LSTMs use for long prefixes) gives the outputs, states and gradients of the plain loop,
    with repeated lengths, a zero length and lengths short of the sequence."""
    lengths = torch.tensor([5, 0, 2, 5, 1, 3])
    results = []
    for run in ("segments", "plain"):
        cell = make(name, run == "segments")
        torch.manual_seed(1)
        x = torch.randn(L, 6, I, dtype=torch.float64, requires_grad=True)
        state = rand_state(cell, n=6, requires_grad=True)
        if run == "segments":
            y, s = kernel_by_length(cell, x, state, lengths)
        else:
            y, s = cell(x, state, lengths)
        loss = (y * torch.randn_like(y)).sum() + sum((t * torch.randn_like(t)).sum() for t in s)
        results.append((y, *s, *torch.autograd.grad(loss, [x, *state, *cell.parameters()])))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_kernel_by_length_is_used_when_it_pays():
    """Long segments go to the kernel, short ones to the loop (MIN_SEGMENT)."""
    cell = make("lstm", True)
    calls = []
    cell.sequence_kernel = lambda x, s: calls.append(x.shape[0]) or type(cell).sequence_kernel(
        cell, x, s)
    x = torch.randn(4 * MIN_SEGMENT, 3, I, dtype=torch.float64)
    cell(x, lengths=torch.tensor([4 * MIN_SEGMENT, MIN_SEGMENT, 1]))
    assert calls == [1, MIN_SEGMENT - 1, 3 * MIN_SEGMENT]
    calls.clear()
    cell(x[:MIN_SEGMENT], lengths=torch.tensor([MIN_SEGMENT, 2, 1]))
    assert calls == []


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", CELLS)
def test_lengths(name, fast):
    cell = make(name, fast)
    x = torch.randn(L, N, I, dtype=torch.float64)
    state = rand_state(cell)
    lengths = torch.tensor([L, 1, 4])
    y, s = cell(x, state, lengths)
    for i, n in enumerate(lengths.tolist()):
        y_i, s_i = cell(x[:n, i : i + 1], tuple(t[i : i + 1] for t in state))
        for a, b in zip(s, s_i):
            torch.testing.assert_close(a[i : i + 1], b, atol=1e-12, rtol=0)
        torch.testing.assert_close(y[:n, i : i + 1], y_i, atol=1e-12, rtol=0)
        # past its length a sample's output repeats its final state
        torch.testing.assert_close(y[n:, i], s[0][i].expand(L - n, H), atol=0, rtol=0)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", CELLS)
def test_state_passing(name, fast):
    """Running a sequence in two chunks, passing the state, equals one run."""
    cell = make(name, fast)
    x = torch.randn(L, N, I, dtype=torch.float64)
    y, s = cell(x)
    y1, s1 = cell(x[:3])
    y2, s2 = cell(x[3:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), y, atol=1e-12, rtol=0)
    for a, b in zip(s2, s):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_constant_input_long_horizon(name):
    """VAA's use: a constant (expanded) input for many steps, in chunks, without gradients."""
    torch.manual_seed(0)
    cell = CELLS[name](3, 16)
    u = torch.randn(1, 8, 3)
    state = None
    with torch.no_grad():
        for _ in range(5):
            y, state = cell(u.expand(400, 8, 3), state)
        # the expanded input is projected once: same result as a materialised input
        y_mat, s_mat = cell(u.expand(50, 8, 3).contiguous(), state)
        y_exp, s_exp = cell(u.expand(50, 8, 3), state)
    assert all(torch.isfinite(t).all() for t in state)
    torch.testing.assert_close(y_exp, y_mat)
    for a, b in zip(s_exp, s_mat):
        torch.testing.assert_close(a, b)
    assert y.shape == (400, 8, 16)


def test_bad_input_shape():
    with pytest.raises(ValueError):
        GRU(4, 5)(torch.randn(3, 2, 5))
    with pytest.raises(ValueError):
        GRU(0, 5)


# -- the config group -----------------------------------------------------------------------
@pytest.mark.parametrize("path", YAMLS, ids=[p.stem for p in YAMLS])
def test_yaml_instantiates(path):
    cfg = OmegaConf.load(path)
    extra = {"t_max": 20} if "t_max" in cfg and cfg.t_max is None else {}
    make_cell = hydra.utils.instantiate(cfg, _partial_=True, **extra)
    cell = make_cell(input_size=2, hidden_size=6)
    assert type(cell).__module__ == f"src.cells.{path.stem}"
    x = torch.randn(9, 4, 2, requires_grad=True)
    y, s = cell(x, lengths=torch.tensor([9, 3, 5, 1]))
    assert y.shape == (9, 4, 6) and len(s) == cell.state_size
    assert all(t.shape == (4, 6) for t in s)
    (y.sum() + s[0].sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in cell.parameters())
    assert cell.reset_parameters() is None
    if extra:
        assert cell.t_max == 20
        assert hydra.utils.instantiate(cfg, input_size=2, hidden_size=6).t_max == 100


# -- the C++ loops (src/cells/native.cpp) ----------------------------------------
NATIVE = [name for name in CELLS if make(name).native is not None]


def needs_cpp_loops():
    from src.cells import native

    if not native.load():
        pytest.skip(f"no C++ loops on this machine ({native._state.get('why')})")
    return native


#: Cells whose fast path hands whole sequences to torch's own kernel (the LSTMs): they reach
#: their C++ loop only with lengths, on sequences shorter than MIN_SEGMENT steps per sample.
SEQUENCE_KERNEL = [name for name in NATIVE if make(name).has_sequence_kernel]
#: (cell, with lengths) pairs whose C++ loop runs: the LSTMs without lengths never do.
CPP_CASES = [(name, lengths) for name in NATIVE for lengths in (True, False)
             if lengths or name not in SEQUENCE_KERNEL]


def float32_pairs(name, batch, width, with_lengths, seed=3):
    """(C++ loop, Python loop) pairs of outputs, final state, every gradient (one weight
    frozen, as for the warmed/plain split) and the no-grad constant-input outputs. 23 steps,
    or for the LSTMs fewer than MIN_SEGMENT a sample, so that their C++ loop runs, not
    torch's kernel (asserted)."""
    native = needs_cpp_loops()
    cell = make(name, h=width).float()
    steps = 23
    if cell.has_sequence_kernel:
        assert with_lengths, "without lengths the LSTMs run torch's kernel, not the C++ loop"
        steps = min(23, MIN_SEGMENT * batch - 1)
    cell.weight_ih.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, I, generator=g)
    state = tuple(torch.randn(batch, width, generator=g) for _ in range(cell.state_size))
    lengths = torch.tensor([23, 0, 5, 17, 40, 1] * 6)[:batch] if with_lengths else None
    from unittest import mock

    real, used = native.ops, []

    def counted(*args, **kwargs):
        found = real(*args, **kwargs)
        used.append(found is not None and native._state.get("use", True))
        return found

    with mock.patch.object(native, "ops", counted):
        pairs = native.compare(cell, x, state, lengths)
    assert any(used), f"{name}: the C++ loop never ran"
    return pairs


def test_the_cpp_loops_are_built_and_used_here():
    """The suite measures the loops the runs use: the library must build on this machine
    (a C++ compiler; ``make`` installs ninja) and agree with the Python loops here
    (native.verified). ``WARMUP_NATIVE=0`` opts out of them."""
    from src.cells import native

    if native.disabled():
        pytest.skip("WARMUP_NATIVE=0: the Python loops only")
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("no C++ compiler here: the Python loops only")
    assert native.load(), native._state.get("why")
    like = torch.zeros(2, 3, 4)
    assert {n: make(n).native_ops(like) is not None for n in NATIVE} == dict.fromkeys(NATIVE, True)
    # float64 and the like run the Python loops: the C++ loops take float32 only
    assert all(make(n).native_ops(like.double()) is None for n in NATIVE)


@pytest.mark.parametrize("batch,width", [(1, 1), (2, 7), (6, 37), (33, 64)])
@pytest.mark.parametrize("name,with_lengths", CPP_CASES,
                         ids=[f"{n}-{'lengths' if w else 'full'}" for n, w in CPP_CASES])
def test_cpp_loop_agrees_with_the_python_loop(name, with_lengths, batch, width):
    """The same equations: float32 results within float32 rounding of the Python loop,
    forwards, backwards and without gradients, with lengths (some 0, some past the end), at
    one row and one unit, and at widths that are not multiples of any vector length (7: tails
    only; 37: AVX2 and AVX-512 bodies, then a tail). Relative to each result's largest
    magnitude: rounding leaves a few 1e-6 after 23 steps, a wrong term leaves order 1."""
    for k, (cpp, python) in enumerate(float32_pairs(name, batch, width, with_lengths)):
        assert cpp.shape == python.shape and cpp.dtype == python.dtype == torch.float32
        scale = python.abs().max().item()
        assert (cpp - python).abs().max().item() <= 1e-4 * scale + 1e-6, (k, scale)


@pytest.mark.parametrize("name", NATIVE)
def test_cpp_loop_gives_the_same_bits_twice(name):
    """One path, one machine, one input: the same bits every time (what reproducibility of a
    run rests on)."""
    first = float32_pairs(name, 6, 37, True, seed=7)
    again = float32_pairs(name, 6, 37, True, seed=7)
    for (a, _), (b, _) in zip(first, again, strict=True):
        assert torch.equal(a, b)


def test_the_load_check_catches_a_loop_that_is_wrong(monkeypatch):
    """native.check is no formality: a loop whose output is off by one part in 1e3 fails it,
    and a right loop passes it."""
    native = needs_cpp_loops()
    assert native.check("gru", GRU) == ""
    assert native.verified("mgu", MGU)  # the machine's verdict, kept before the loop is skewed
    right = native.ops

    def off(cell, like=None, cls=None):
        found = right(cell, like, cls)
        if found is None or cell != "mgu":
            return found
        forward, backward = found

        def skewed(gx, state, weights, keep, save):
            ys, *rest = forward(gx, state, weights, keep, save)
            return [ys * (1 + 1e-3), *rest]

        return skewed, backward

    monkeypatch.setattr(native, "ops", off)
    assert native.check("mgu", MGU).startswith("mgu, batch 1, width 1")
    assert native.check("gru", GRU) == ""


def test_a_subclass_that_changes_the_equations_leaves_the_cpp_loop():
    class Leaky(GRU):
        @staticmethod
        def fused_step(gx_t, state, weights):
            (h_new,), aux = GRU.fused_step(gx_t, state, weights)
            return (0.5 * h_new + 0.5 * state[0],), aux

    from src.cells import native

    like = torch.zeros(1, 1, 9)
    assert Leaky(2, 3).native_ops(like) is None
    if native.load():  # the control: the GRU itself runs on it
        assert GRU(2, 3).native_ops(like) is not None


def test_without_the_library_the_python_loop_runs(monkeypatch):
    from src.cells import native

    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("WARMUP_NATIVE", "0")
    cell = make("gru").float()
    assert cell.native_ops() is None
    y, _ = cell(torch.randn(L, N, I))
    assert y.shape == (L, N, H) and torch.isfinite(y).all()


def test_without_a_compiler_the_cells_fall_back_with_one_warning(tmp_path):
    """A machine whose C++ compiler fails (here CXX=/bin/false, in a fresh build folder): the
    first cell says once why the C++ loops are not used, and every cell runs its Python loop."""
    import subprocess
    import sys

    code = ("import torch; from src.cells import GRU, MGU; "
            "print(*(c(3, 8)(torch.randn(5, 2, 3))[0].shape[-1] for c in (GRU, MGU, GRU)))")
    env = {**os.environ, "CXX": "/bin/false", "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    env.pop("WARMUP_NATIVE", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["8", "8", "8"]
    assert proc.stderr.count("C++ time loops (src/cells/native.cpp) are not used") == 1
    log = tmp_path / "warmup_rnn_native" / "build-error.log"
    assert f"the whole message: {log}" in proc.stderr and log.stat().st_size > 0


@pytest.mark.build
def test_the_loops_build_from_a_checkout_under_a_path_with_a_space(tmp_path):
    """A real build (about 15 s) as in a checkout under a folder named with a space and a
    non-ASCII letter, whose .venv holds torch: src/ copied there, torch's packages reached
    through a link there, a fresh build folder there. The loops link and load, and a cell
    uses them. (Before the fix: `ld: cannot find ...`, torch's -L folder being unquoted.)"""
    import subprocess
    import sys

    root = tmp_path / "my projects" / "warm-up ü"
    shutil.copytree(Path(__file__).parents[1] / "src", root / "src",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "site packages").symlink_to(Path(torch.__file__).parents[1])
    code = ("import torch; from src.cells import GRU, native; "
            "assert ' ' in torch.__file__, torch.__file__; ok = native.load(); "
            "print(ok, GRU(3, 8)(torch.randn(5, 2, 3))[0].shape[-1], native._state.get('why'))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "site packages")]),
           "TORCH_EXTENSIONS_DIR": str(root / ".venv" / "torch extensions")}
    env.pop("WARMUP_NATIVE", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["True", "8"], proc.stdout + proc.stderr[-2000:]
    assert "not used" not in proc.stderr
