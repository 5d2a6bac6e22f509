"""Every figure and the summary table from one MLflow experiment (reads the store only).

    python -m src.figures --tracking-uri URI --experiment reproduce-cpu --out outputs/figures
"""

from src.figures import make_all
from src.figures.cli import cli

if __name__ == "__main__":
    cli(make_all, __doc__.splitlines()[0], titled=True)
