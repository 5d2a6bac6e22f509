"""The C++ time loops of ``native.cpp``: build once, load, check, and fall back when any fails.

The loops compute the equations of the cells' Python hooks on raw float32 buffers, without the
Python interpreter and ATen's per-operation overhead between the operations, which are most of a
step's cost at small sizes (docs: "Speed"). Their results equal the Python loop's up to float32
rounding, not bit for bit: fused multiply-adds, the order of additions and the BLAS kernel
differ between CPUs and between the two paths.

The library is compiled on first use by :func:`torch.utils.cpp_extension.load` (a C++ compiler
and ninja: ``pip install -e .`` brings ninja, and ``make`` builds the library right after the
install), into the virtual environment (``.venv/torch_extensions/``: each checkout its own
build), or, outside a virtual environment or with ``TORCH_EXTENSIONS_DIR`` set, into torch's
extension cache. It is rebuilt when ``native.cpp`` changes.

Once loaded, :func:`check` runs every cell's loop beside its Python loop on several shapes
(batch 1 to 33, widths 1 to 64: vector bodies and tails of every width the CPU may use; with and
without per-sample lengths; forwards, backwards and without gradients) and keeps the loops on
only if every result agrees within float32 tolerance (:data:`RTOL`, :data:`ATOL`). The loops
take float32 CPU tensors only; other dtypes and devices always run the Python loops.

Without a compiler, with a failed build or check, or with ``WARMUP_NATIVE=0`` in the
environment, every cell runs its Python loop instead: the same results within rounding, slower.
``python -m src.cells.native`` builds the library, checks it and says which of the two a run
will use.
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


#: The agreement :func:`check` asks of the C++ loops against the Python loops, after a dozen
#: steps: ``max |cpp - python| <= RTOL * max |python| + ATOL`` for every result. Measured here
#: (AVX-512 and ATEN_CPU_CAPABILITY=default) the largest ratio was 4e-6: rounding, a
#: wrong equation gives differences of order 1.
RTOL, ATOL = 1e-4, 1e-6

#: ``(batch, width)`` shapes :func:`check` runs: one row and one unit, widths below and across
#: the 8- and 16-float vector lengths of AVX2 and AVX-512, and a larger batch.
CHECK_SHAPES = ((1, 1), (2, 7), (6, 37), (33, 64))


def machine_key() -> str:
    """What the loops' agreement depends on: the source, torch, the vector instructions ATen
    uses (``ATEN_CPU_CAPABILITY`` included), the CPU's model and features, and whether the
    loops' own kernels are forced to their baseline build (``WARMUP_NATIVE_PLAIN=1``)."""
    import hashlib
    import platform

    cpu = platform.processor()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = "|".join(sorted({line for line in info
                               if line.split(":")[0].strip() in {"model name", "flags",
                                                                 "Features", "CPU part"}}))
    except OSError:
        pass
    parts = [SOURCE.read_text(), torch.__version__, torch.backends.cpu.get_cpu_capability(),
             platform.machine(), cpu, os.environ.get("WARMUP_NATIVE_PLAIN", "")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def checked() -> str:
    """:func:`check`'s verdict, computed once per machine and kept beside the built library
    (a machine, here, is what :func:`machine_key` names); ``""`` where the loops agree."""
    import json

    from torch.utils import cpp_extension

    folder = Path(build_directory() or cpp_extension._get_build_directory(NAME, False))
    record = folder / f"check-{machine_key()}.json"
    try:
        return json.loads(record.read_text())["disagree"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    disagree = check()
    tmp = record.with_suffix(f".{os.getpid()}.tmp")
    try:  # written whole, then renamed: concurrent processes read a complete file or none
        tmp.write_text(json.dumps({"disagree": disagree}))
        os.replace(tmp, record)
    except OSError:
        pass
    return disagree


def load(verbose: bool = False) -> bool:
    """Build (if needed), load and check the library once per process; whether it is used."""
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
        cpp_extension.load(NAME, [str(SOURCE)], extra_cflags=["-O3", "-fno-trapping-math"],
                           is_python_module=False, build_directory=build_directory(),
                           verbose=verbose)
        if not torch.ops.warmup_rnn.available():
            raise RuntimeError("this torch build exports no sgemm_ for the loops' products")
        _state.update(ok=True, why="")  # on while check() compares them with the Python loops
        disagree = checked()
        if disagree:
            raise RuntimeError(f"they disagree with the Python loops on this machine ({disagree})")
    except Exception as err:  # no compiler, no ninja, a failed build or check: Python loops
        why = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        _state.update(ok=False, why=why)
        warnings.warn(f"the C++ time loops (src/cells/native.cpp) are not used ({why}); "
                      "the cells run their Python loops: the same results, slower", stacklevel=2)
    return _state["ok"]


@torch.inference_mode(False)
@torch.enable_grad()
def compare(cell, x: torch.Tensor, state, lengths) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs ``(C++ loop, Python loop)`` of everything a run reads from ``cell`` on ``x``:
    outputs, final state, the gradients of a loss with respect to the input, the initial
    state and every trainable parameter, and the outputs without gradients on the input's
    first step held constant in time (VAA's use)."""
    results = []
    for use in (True, False):
        _state["use"] = use
        try:
            cell.zero_grad(set_to_none=True)
            xs = x.detach().clone().requires_grad_()
            s0 = tuple(s.detach().clone().requires_grad_() for s in state)
            y, s = cell(xs, s0, lengths)
            weight = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
            loss = (y * weight).sum() + sum(t.pow(2).sum() for t in s)
            wrt = [xs, *s0, *(p for p in cell.parameters() if p.requires_grad)]
            out = [y, *s, *torch.autograd.grad(loss, wrt)]
            with torch.no_grad():
                out.append(cell(x[:1].expand(3 * x.shape[0], -1, -1), state, lengths)[0])
        finally:
            _state["use"] = True
        results.append(out)
    return list(zip(*results))


@torch.inference_mode(False)
@torch.enable_grad()
def check() -> str:
    """Every cell of :data:`CELLS` on :data:`CHECK_SHAPES`, with and without lengths, on the
    C++ loop and on the Python loop; ``""`` where all agree within (:data:`RTOL`,
    :data:`ATOL`), else the first disagreement."""
    from src.cells import BRC, GRU, LSTM, MGU, NBRC, RNN

    classes = {"gru": GRU, "mgu": MGU, "rnn": RNN, "lstm": LSTM, "brc": BRC, "nbrc": NBRC}
    gen = torch.Generator().manual_seed(0)
    L = 10
    for name in CELLS:
        for batch, width in CHECK_SHAPES:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                cell = classes[name](3, width)
            with torch.no_grad():  # off the initialisation (zero biases), so every term counts
                for p in cell.parameters():
                    p.add_(0.3 * torch.randn(p.shape, generator=gen))
            x = torch.randn(L, batch, 3, generator=gen)
            state = tuple(torch.randn(batch, width, generator=gen)
                          for _ in range(cell.state_size))
            lengths = torch.randint(0, L + 3, (batch,), generator=gen)
            # without lengths the LSTM runs torch.lstm, not this loop
            for lens in ((lengths,) if cell.has_sequence_kernel else (None, lengths)):
                for k, (a, b) in enumerate(compare(cell, x, state, lens)):
                    err = (a - b).abs().max().item()
                    if not err <= RTOL * b.abs().max().item() + ATOL:  # NaN: disagree
                        return (f"{name}, batch {batch}, width {width}, "
                                f"{'with' if lens is not None else 'without'} lengths, "
                                f"result {k}: max difference {err:.2g}")
    return ""


def ops(cell: str, like: torch.Tensor | None = None):
    """``(forward, backward)`` operators of ``cell``'s C++ loop, or ``None`` (Python loop):
    ``like`` (the input projection) must be a float32 CPU tensor."""
    if cell not in CELLS or not _state.get("use", True) or not load():
        return None
    if like is not None and (like.dtype != torch.float32 or like.device.type != "cpu"):
        return None
    lib = torch.ops.warmup_rnn
    return getattr(lib, f"{cell}_forward"), getattr(lib, f"{cell}_backward")


def main() -> None:
    start = time.perf_counter()
    ok = load(verbose="-v" in sys.argv)
    if ok:
        print(f"C++ time loops ready for {', '.join(CELLS)}, checked against the Python "
              f"loops ({time.perf_counter() - start:.0f} s to build, load and check)")
    else:
        print(f"C++ time loops not used ({_state['why']}): the cells run their Python loops "
              "(the same results within rounding, slower)")


if __name__ == "__main__":
    main()
