"""``python -m src.cells [-v]``: build the C++ time loops (src/cells/native.cpp), check every
built-in cell's loop against its Python loop on this machine, and say which loops runs use."""

import sys
import time

from src.cells import BRC, GRU, LSTM, MGU, NBRC, RNN, native

start = time.perf_counter()
if not native.load(verbose="-v" in sys.argv):
    print(f"C++ time loops not used ({native._state['why']}): the cells run their Python loops "
          "(the same results within rounding, slower)")
    sys.exit(0)
classes = {cls.native: cls for cls in (GRU, MGU, RNN, LSTM, BRC, NBRC)}
agree = [name for name in native.CELLS if native.verified(name, classes[name])]
others = [name for name in native.CELLS if name not in agree]
print(f"C++ time loops ready for {', '.join(agree) or 'no cell'}, checked against the Python "
      f"loops ({time.perf_counter() - start:.0f} s to build, load and check)"
      + (f"; {', '.join(others)} disagreed and run their Python loops" if others else ""))
