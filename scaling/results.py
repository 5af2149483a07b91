"""`scaling.results.load(SWEEP_DIR)`: an alias of `scaling.sweep.results` (tidy DataFrames of runs)."""

from scaling.sweep.results import COLUMNS, load, load_curves, load_run  # noqa: F401
