"""The C++ time loops of ``native.cpp``: build once, load, and fall back when that fails.

The loops compute what the cells' Python hooks compute, with the same roundings, so the
numbers are the same to the last bit; they skip the Python interpreter between operations,
and ATen's overhead per operation, which are most of a step's cost at small sizes (README,
"Speed"). Each loop runs its elementwise arithmetic as one pass with ATen's roundings, on raw
buffers with the BLAS calls of at::addmm, with and without per-sample lengths, which
:func:`check_fused` confirms once per process (else the loops call ATen's operations one at
a time, the same numbers again). The library is compiled on first use
by :func:`torch.utils.cpp_extension.load` (a C++ compiler and ninja: ``pip install -e .``
brings ninja, and ``make`` builds the library right after the install), into the virtual
environment (``.venv/torch_extensions/``: each checkout its own build, so that two clones
on one machine never rebuild each other's), or, outside a virtual environment or with
``TORCH_EXTENSIONS_DIR`` set, into torch's extension cache. Later processes find it there;
it is rebuilt when ``native.cpp`` changes.

Without a compiler, or with ``WARMUP_NATIVE=0`` in the environment, every cell runs its
Python loop instead: the same results, slower. ``python -m src.cells.native`` builds the
library and says which of the two a run will use.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("native.cpp")
NAME = "warmup_rnn_native"
#: The cells with a loop in native.cpp (``RecurrentCell.native``).
CELLS = ("gru", "mgu", "rnn", "lstm", "brc", "nbrc")

_state: dict = {}


def _off(variable: str) -> bool:
    return os.environ.get(variable, "1").strip().lower() in {"0", "false", "no", "off"}


def disabled() -> bool:
    return _off("WARMUP_NATIVE")


def build_directory() -> str | None:
    """Where the library is built: inside the virtual environment, else torch's choice."""
    if os.environ.get("TORCH_EXTENSIONS_DIR") or sys.prefix == sys.base_prefix:
        return None
    path = Path(sys.prefix) / "torch_extensions" / NAME
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def load(verbose: bool = False) -> bool:
    """Build (if needed) and load the library once per process; whether it is usable."""
    if "ok" in _state:
        return _state["ok"]
    if disabled():
        _state.update(ok=False, why="WARMUP_NATIVE=0")
        return False
    try:
        from torch.utils import cpp_extension

        try:  # the ninja of the `ninja` wheel, when the venv's bin is not on PATH
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
        # -ffp-contract=off: no fused multiply-add but those native.cpp writes (bit-equality)
        cpp_extension.load(NAME, [str(SOURCE)], extra_cflags=["-O3", "-ffp-contract=off", "-fno-trapping-math"],
                           is_python_module=False, build_directory=build_directory(),
                           verbose=verbose)
        _state.update(ok=True, why="", fused=check_fused())
    except Exception as err:  # no compiler, no ninja, a failed build: the Python loops
        why = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        _state.update(ok=False, why=why)
        warnings.warn(f"the C++ time loops (src/cells/native.cpp) are unavailable ({why}); "
                      "the cells run their Python loops: the same results, slower", stacklevel=2)
    return _state["ok"]


def check_fused() -> bool:
    """Whether the fused arithmetic and raw loops of every cell in native.cpp (:data:`CELLS`)
    give, on this machine, the same bits as the ATen operations they replace: forward and
    backward of a small layer, with and without per-sample lengths, both ways. Where they do
    not (another torch, a CPU where ATen rounds otherwise), the fused path is turned off for
    the process, with a warning: the loops then call the ATen operations."""
    lib = torch.ops.warmup_rnn
    gen = torch.Generator().manual_seed(0)
    L, N, H = 5, 3, 21  # an odd width: vector bodies and scalar tails both
    h0, d_ys = torch.randn(N, H, generator=gen), torch.randn(L, N, H, generator=gen)
    keep = torch.rand(L, N, 1, generator=gen) < 0.7  # per-sample lengths: the other path
    c0 = torch.randn(N, H, generator=gen)
    cells = {"gru": (torch.randn(L, N, 3 * H, generator=gen), [h0],
                     [torch.randn(3 * H, H, generator=gen) / H**0.5,
                      torch.randn(3 * H, generator=gen)]),
             "rnn": (torch.randn(L, N, H, generator=gen), [h0],
                     [torch.randn(H, H, generator=gen) / H**0.5]),
             "lstm": (torch.randn(L, N, 4 * H, generator=gen), [h0, c0],
                      [torch.randn(4 * H, H, generator=gen) / H**0.5]),
             "brc": (torch.randn(L, N, 3 * H, generator=gen), [h0],
                     [torch.randn(H, generator=gen), torch.randn(H, generator=gen)]),
             "nbrc": (torch.randn(L, N, 3 * H, generator=gen), [h0],
                      [torch.randn(2 * H, H, generator=gen) / H**0.5]),
             "mgu": (torch.randn(L, N, 2 * H, generator=gen), [h0],
                     [torch.randn(2 * H, H, generator=gen) / H**0.5])}

    def both() -> list[torch.Tensor]:
        out = []
        for cell, (gx, state, weights) in cells.items():
            forward, backward = getattr(lib, f"{cell}_forward"), getattr(lib, f"{cell}_backward")
            for k in (None, keep):
                ys, *rest = forward(gx, state, weights, k, True)
                final, saved = rest[:len(state)], rest[len(state):]
                d_final = [torch.full_like(s, 0.5) for s in final]
                out += [ys, *final, *backward(d_ys, d_final, ys, state, saved, weights, k)]
        return out

    lib.set_fused(True)
    fused = both()
    lib.set_fused(False)
    plain = both()
    same = len(fused) == len(plain) and all(torch.equal(a, b) for a, b in zip(fused, plain))
    lib.set_fused(same)
    if not same:
        warnings.warn("the C++ loops' fused arithmetic rounds differently from ATen's on this "
                      "machine; the loops call ATen's operations instead (the same results as "
                      "the Python loops, a little slower)", stacklevel=3)
    return same


def ops(cell: str):
    """``(forward, backward)`` operators of ``cell``'s C++ loop, or ``None`` (Python loop)."""
    if cell not in CELLS or not load():
        return None
    lib = torch.ops.warmup_rnn
    return getattr(lib, f"{cell}_forward"), getattr(lib, f"{cell}_backward")


def main() -> None:
    start = time.perf_counter()
    ok = load(verbose="-v" in sys.argv)
    if ok:
        print(f"C++ time loops ready for {', '.join(CELLS)} "
              f"({time.perf_counter() - start:.0f} s to build or load)")
    else:
        print(f"C++ time loops unavailable ({_state['why']}): the cells run their Python loops "
              "(the same results, slower)")


if __name__ == "__main__":
    main()
