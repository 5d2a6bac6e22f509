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

The first time a cell's loop is asked for on a machine, :func:`check` runs it beside the
cell's Python loop on several shapes (batch 1 to 33, widths 1 to 64: vector bodies and tails of
every width the CPU may use; with and without per-sample lengths; forwards, backwards and
without gradients) and uses it only if every result agrees within float32 tolerance
(:data:`RTOL`, :data:`ATOL`); the verdict is kept beside the build, per machine
(:func:`machine_key`). The loops take float32 CPU tensors only; other dtypes and devices
always run the Python loops.

Without a compiler, with a failed build or check, or with ``WARMUP_NATIVE=0`` in the
environment, every cell runs its Python loop instead: the same results within rounding, slower.
``python -m src.cells`` builds the library, checks every cell's loop and says which loops a
run will use.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
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


def build_folder() -> Path:
    """:func:`build_directory`, or torch's extension folder where it leaves the choice."""
    from torch.utils import cpp_extension

    return Path(build_directory() or cpp_extension._get_build_directory(NAME, False))


#: The agreement :func:`check` asks of a C++ loop against the Python loop, after ten steps:
#: ``max |cpp - python| <= RTOL * max |python| + ATOL`` for every result. Measured here
#: (AVX-512 and ATEN_CPU_CAPABILITY=default) the largest ratio was 4e-6: rounding, a wrong
#: equation gives differences of order 1.
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


def verdicts_file() -> Path:
    """Where the checks' verdicts of this machine are kept: beside the built library (found
    once per process: the key reads the source and the CPU's description)."""
    if "verdicts_file" not in _state:
        _state["verdicts_file"] = build_folder() / f"check-{machine_key()}.json"
    return _state["verdicts_file"]


def verified(cell: str, cls) -> bool:
    """Whether ``cell``'s loop agrees with the Python loop of ``cls`` (the class that declares
    it) on this machine: :func:`check`, run once per machine and cell and kept in
    :func:`verdicts_file`. A loop that disagrees is not used (a warning says why)."""
    import json

    verdicts = _state.setdefault("verdicts", {})
    if cell not in verdicts:
        path = verdicts_file()
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = {}
        if isinstance(kept.get(cell), str):
            verdicts[cell] = kept[cell]
        else:
            verdicts[cell] = ""  # used by the check itself while it runs
            verdicts[cell] = check(cell, cls)
            try:  # written whole, then renamed: a process reads a complete file or none
                latest = json.loads(path.read_text()) if path.exists() else {}
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps({**latest, cell: verdicts[cell]}))
                os.replace(tmp, path)
            except (OSError, ValueError):
                pass
        if verdicts[cell]:
            warnings.warn(f"the C++ loop of {cell} disagrees with its Python loop on this machine "
                          f"({verdicts[cell]}); {cell} runs its Python loop: the same results, "
                          "slower", stacklevel=3)
    return verdicts[cell] == ""


def load(verbose: bool = False) -> bool:
    """Build (if needed) and load the library once per process; whether it is available (each
    cell's loop is then checked on first use, :func:`verified`)."""
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
        folder = build_folder()
        with quoted_torch_lib(cpp_extension):
            cpp_extension.load(NAME, [str(source_in(folder))],
                               extra_cflags=["-O3", "-fno-trapping-math"], is_python_module=False,
                               build_directory=str(folder), verbose=verbose)
        if not torch.ops.warmup_rnn.available():
            raise RuntimeError("this torch build exports no sgemm_ for the loops' products")
        _state.update(ok=True, why="")
    except Exception as err:  # no compiler, no ninja, a failed build: the Python loops
        why = failure(err)
        _state.update(ok=False, why=why)
        warnings.warn(f"the C++ time loops (src/cells/native.cpp) are not used ({why}); "
                      "the cells run their Python loops: the same results, slower", stacklevel=2)
    return _state["ok"]


@contextmanager
def quoted_torch_lib(cpp_extension):
    """torch's own library folder, shell-quoted while the build file is written: torch quotes
    its include folders in ninja's build file but not its ``-L`` folder, so a virtual
    environment under a path with a space (a checkout named so, whose ``.venv`` holds torch)
    fails to link (``ld: cannot find ...``)."""
    import shlex

    plain = cpp_extension.TORCH_LIB_PATH
    cpp_extension.TORCH_LIB_PATH = shlex.quote(plain)
    try:
        yield
    finally:
        cpp_extension.TORCH_LIB_PATH = plain


def source_in(folder: Path) -> Path:
    """``native.cpp`` copied into the build folder, where the build reads it, so that the build
    file names it by a short path whatever the checkout's (ninja escapes spaces in it; the copy
    keeps other characters of a checkout's path out of the build). The copy is rewritten only
    when the source changed, so that ninja rebuilds only then."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / SOURCE.name
    text = SOURCE.read_bytes()
    if not copy.exists() or copy.read_bytes() != text:
        tmp = copy.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(text)
        os.replace(tmp, copy)
    return copy


def failure(err: BaseException) -> str:
    """Why the build failed, in one line: the compiler's (or ninja's) first error line, and
    the file the whole message is written to (beside the build)."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = next((line for key in ("error:", "FAILED:") for line in lines if key in line),
                 lines[-1])
    try:
        log = build_folder() / "build-error.log"
        log.write_text(text + "\n")
        return f"{first}; the whole message: {log}"
    except Exception:  # the folder cannot be written: the first line alone
        return first


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
            grads = torch.autograd.grad(loss, wrt, allow_unused=True)  # x unused at length 0
            out = [y, *s, *(torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads))]
            with torch.no_grad():
                out.append(cell(x[:1].expand(3 * x.shape[0], -1, -1), state, lengths)[0])
        finally:
            _state["use"] = True
        results.append(out)
    return list(zip(*results))


@torch.inference_mode(False)
@torch.enable_grad()
def check(cell: str, cls) -> str:
    """``cell``'s C++ loop against the Python loop of ``cls`` on :data:`CHECK_SHAPES`, with and
    without lengths (the LSTMs' loop runs with lengths only); ``""`` where every result agrees
    within (:data:`RTOL`, :data:`ATOL`), else the first disagreement."""
    gen = torch.Generator().manual_seed(0)
    L = 10
    for batch, width in CHECK_SHAPES:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            layer = cls(3, width)
        with torch.no_grad():  # off the initialisation (zero biases), so every term counts
            for p in layer.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
        x = torch.randn(L, batch, 3, generator=gen)
        state = tuple(torch.randn(batch, width, generator=gen) for _ in range(layer.state_size))
        lengths = torch.randint(0, L + 3, (batch,), generator=gen)
        for lens in ((lengths,) if layer.has_sequence_kernel else (None, lengths)):
            for k, (a, b) in enumerate(compare(layer, x, state, lens)):
                err = (a - b).abs().max().item()
                if not err <= RTOL * b.abs().max().item() + ATOL:  # NaN: disagree
                    return (f"{cell}, batch {batch}, width {width}, "
                            f"{'with' if lens is not None else 'without'} lengths, "
                            f"result {k}: max difference {err:.2g}")
    return ""


def ops(cell: str, like: torch.Tensor | None = None, cls=None):
    """``(forward, backward)`` operators of ``cell``'s C++ loop, or ``None`` (Python loop):
    ``like`` (the input projection) must be a float32 CPU tensor, and the loop must agree with
    the Python loop of ``cls`` (the class that declares it) on this machine."""
    if cell not in CELLS or not _state.get("use", True) or not load():
        return None
    if like is not None and (like.dtype != torch.float32 or like.device.type != "cpu"):
        return None
    if cls is not None and not verified(cell, cls):
        return None
    lib = torch.ops.warmup_rnn
    return getattr(lib, f"{cell}_forward"), getattr(lib, f"{cell}_backward")
