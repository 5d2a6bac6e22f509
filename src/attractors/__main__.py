"""``python -m src.attractors RUN_ID``: redraw a finished run's attractors (src/attractors/rerun.py)."""

from src.attractors.rerun import main

main()
