"""notebooks/scaling_curves.ipynb runs top to bottom (nbclient, the venv's python3 kernel) on a sweep."""

import os

import nbclient
import nbformat

from scaling.laws import synthetic

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "notebooks", "scaling_curves.ipynb")


def test_scaling_curves_notebook_runs_on_a_sweep(tmp_path, monkeypatch):
  sweep = str(tmp_path / "sweep")
  synthetic.write_sweep(sweep, budgets=(1e13, 1e14, 1e15), sizes_per_budget=5)  # small: ~30 s on 2 cores
  monkeypatch.setenv("SCALING_SWEEP_DIR", sweep)
  monkeypatch.setenv("SCALING_N_BOOT", "20")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()

  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
  assert f"sweep: {sweep}" in text  # the env var was honoured, no demo sweep was made
  assert "approach3/gpt" in text and "95% CI" in text
  assert "gpt-N" in html and "eval_loss" in html  # the runs table
  assert "tokens/param" in html
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6
  assert os.path.exists(os.path.join(sweep, "fit.json"))
