"""experiments/*.py: their sweep configs expand at every scale, and each script's --smoke variant runs
end to end in a tmp sweep dir (runs, fit.json, figures, the expected families), resumes without
retraining, and keeps the classic grid equal to scaling.baselines.run.baseline_runs().

Each neural run compiles 3 functions (~10-40 s on a loaded 2-core box), so only the classic-vs-neural
smoke (tiny MLPs + sklearn) runs by default; the others are @pytest.mark.slow (~2-8 min each).
"""

import importlib
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments import common  # noqa: E402
from scaling import results  # noqa: E402
from scaling.baselines import run as baseline_run  # noqa: E402
from scaling.sweep import ladders, packed  # noqa: E402

SCRIPTS = ("kaplan_scaling", "chinchilla_isoflop", "families", "classic_vs_neural", "known_entropy",
           "cooldown_branches", "mu_transfer", "data_constrained", "hparam_scaling")
CONFIGS = ("kaplan", "chinchilla", "known_entropy", "families_lm", "classic_vs_dnn", "mu_transfer",
           "data_constrained", "hparam_scaling")  # configs/sweeps/


@pytest.mark.parametrize("name", CONFIGS)
def test_sweep_configs_expand(data_dir, name):
  """Every member of the default and smoke sweeps is a valid run; 'full' passes the sweep checks
  (expanding it would build its big dataset)."""
  for scale in ("", "smoke"):
    s = common.sweep_config(name, scale)
    runs = ladders.expand(s)
    assert runs and len({r for r, _ in runs}) == len(runs)
    if scale == "smoke":  # <= 6 compiled tasks per ladder: 3 sizes (x 2 budgets for an IsoFLOP grid), lrs packed
      assert len(packed.groups(runs, s.pack)) <= 6 * max(1, len(s.ladders))
  full = common.sweep_config(name, "full")
  for sub in full.ladders.values() if full.ladders else [full]:
    ladders.validate(sub)
  with pytest.raises(ValueError, match="config arg"):
    common.sweep_config(name, "huge")


def test_cooldown_configs_expand_to_the_same_grid_three_ways(data_dir):
  """configs/sweeps/cooldown.py: branches, separate WSD and separate cosine runs cover the same (N, D) grid;
  the branched one adds one trunk per size; a branch computes a WSD run of its budget (same warmup)."""
  for scale, n_sizes, n_budgets in (("", 3, 4), ("smoke", 2, 3)):
    grids = {}
    for v in ("branches", "wsd", "cosine"):
      runs = ladders.expand(common.sweep_config("cooldown", f"{scale},{v}"))
      members = [c for _, c in runs if c.tags.get("role") != "trunk"]
      grids[v] = sorted((c.size, c.train.tokens) for c in members)
      assert len(members) == n_sizes * n_budgets and len(runs) - len(members) == (n_sizes if v == "branches" else 0)
      assert {c.train.schedule for c in members} == {"cosine" if v == "cosine" else "wsd"}
      assert len({c.train.warmup_steps for c in members}) == 1
    assert grids["branches"] == grids["wsd"] == grids["cosine"]
  for v in ("branches", "cosine"):
    ladders.validate(common.sweep_config("cooldown", f"full,{v}"))
  with pytest.raises(ValueError, match="config argument ',linear' for cooldown.py"):
    common.sweep_config("cooldown", ",linear")


def test_data_constrained_config_is_the_cooldown_grid_plus_repeated_u(data_dir):
  """configs/sweeps/data_constrained.py: cooldown.py's branched grid unchanged (the two experiments share those
  runs) with >= 5 tokens per parameter, plus the main size on each U for 1 .. 16+ epochs in whole steps (a
  1-epoch budget reads each unique token once), one trunk per U and per grid size."""
  from scaling.models import accounting
  for scale, n_u, most in (("", 3, 16), ("smoke", 2, 4)):
    runs = dict(ladders.expand(common.sweep_config("data_constrained", scale)))
    grid = dict(ladders.expand(common.sweep_config("cooldown", f"{scale},branches")))
    for r, c in grid.items():
      assert {k: v for k, v in runs[r].to_dict().items() if k != "tags"} == {k: v for k, v in c.to_dict().items()
                                                                             if k != "tags"}, r
    rep = [c for r, c in runs.items() if c.data.unique_tokens and c.tags.get("role") != "trunk"]
    epochs: dict[int, list] = {}
    for c in rep:
      assert c.data.unique_tokens % (c.data.batch_size * c.data.seq_len) == 0
      epochs.setdefault(c.data.unique_tokens, []).append(c.train.tokens / c.data.unique_tokens)
    assert len(epochs) == n_u and all(sorted(e)[0] == 1 and max(e) >= most for e in epochs.values()), epochs
    assert len({c.size for c in rep}) == 1
    trunks = [c for c in runs.values() if c.tags.get("role") == "trunk"]
    assert len(trunks) == n_u + len({c.size for c in grid.values()})
    if scale == "":
      assert min(c.train.tokens / accounting.params("gpt", c.model)["nonembed"] for r, c in grid.items()
                 if c.tags.get("role") != "trunk") >= 5


def test_classic_grid_is_baseline_runs(data_dir):
  """classic_vs_neural trains exactly baseline_runs()'s classic grid (family x size x training rows)."""
  ours = {(c.family, c.size, c.data.get("train_examples"))
          for _, c in ladders.expand(common.sweep_config("classic_vs_dnn", "")) if c.family != "dnn"}
  theirs = {(c.family, c.size, c.data.train_examples) for c in baseline_run.baseline_runs()}
  assert ours == theirs


def test_parse_args_defaults():
  a = common.parse_args("kaplan_scaling", "doc", [])
  assert a.sweep_dir == os.path.abspath(os.path.join("sweeps", "kaplan_scaling")) and a.scale == ""
  assert common.parse_args("x", "doc", ["--full", "--sweep_dir=/tmp/d"]).scale == "full"
  with pytest.raises(SystemExit):
    common.parse_args("x", "doc", ["--full", "--smoke"])


def _smoke(name: str, sweep_dir: str) -> dict:
  mod = importlib.import_module(f"experiments.{name}")
  return mod.main(["--smoke", f"--sweep_dir={sweep_dir}", "--n_boot=20", "--no_progress"])


def _check(sweep_dir: str, fit: dict, families: set, figures: list[str]) -> None:
  df = results.load(sweep_dir)
  assert set(df["family"]) == families
  assert (df["status"] == "completed").all(), df[["run_id", "status"]]
  assert os.path.exists(os.path.join(sweep_dir, "fit.json"))
  assert fit["run_ids"] == sorted(df["run_id"])
  for f in figures:
    assert os.path.getsize(os.path.join(sweep_dir, f"{f}.png")) > 10_000, f


def test_classic_vs_neural_smoke_and_resume(data_dir, tmp_path, capsys):
  d = str(tmp_path / "classic")
  fit = _smoke("classic_vs_neural", d)
  _check(d, fit, {"svm", "tree", "forest", "logreg", "dnn"}, ["loss_vs_params", "loss_vs_train_examples"])
  assert any(k.endswith("/train_examples") for k in fit["fits"])
  n_runs = len(results.load(d))
  mtimes = {r: os.path.getmtime(os.path.join(d, "runs", r, "result.json")) for r in os.listdir(os.path.join(d, "runs"))}
  capsys.readouterr()
  _smoke("classic_vs_neural", d)  # relaunch: every run is done, nothing trains again
  out = capsys.readouterr().out
  assert len(results.load(d)) == n_runs
  assert mtimes == {r: os.path.getmtime(os.path.join(d, "runs", r, "result.json")) for r in mtimes}
  assert "wrote " + os.path.join(d, "fit.json") in out


@pytest.mark.slow
def test_forecast_smoke_scores_a_run_4x_the_compute(data_dir, tmp_path):
  line = _smoke("forecast", str(tmp_path / "forecast"))
  assert line["flops_ratio"] >= 4 and line["actual"] is not None and line["lo"] < line["loss"] < line["hi"]
  assert isinstance(line["inside"], bool) and line["error"] == pytest.approx(line["loss"] / line["actual"] - 1)


@pytest.mark.slow
def test_kaplan_scaling_smoke(data_dir, tmp_path):
  d = str(tmp_path / "kaplan")
  fit = _smoke("kaplan_scaling", d)
  _check(d, fit, {"gpt"}, ["loss_vs_params", "loss_vs_flops"])
  assert {"kaplan/gpt", "power/gpt", "kaplan/gpt/flops"} <= set(fit["fits"])


@pytest.mark.slow
def test_chinchilla_isoflop_smoke(data_dir, tmp_path):
  d = str(tmp_path / "chinchilla")
  fit = _smoke("chinchilla_isoflop", d)
  _check(d, fit, {"gpt"}, ["loss_vs_flops"])
  assert "hoffmann2022" in fit["reference"]
  assert set(results.load(d)["budget"]) == {1.5e9, 3e9}


@pytest.mark.slow
def test_families_smoke(data_dir, tmp_path):
  d = str(tmp_path / "families")
  fit = _smoke("families", d)
  _check(d, fit, {"gpt", "transformer", "dnn", "ngram"}, ["loss_vs_params"])
  assert {"power/gpt", "power/dnn", "power/ngram"} <= set(fit["fits"])


@pytest.mark.slow
def test_known_entropy_smoke(data_dir, tmp_path):
  d = str(tmp_path / "known_entropy")
  fit = _smoke("known_entropy", d)
  _check(d, fit, {"gpt"}, ["loss_vs_params"])
  t = fit["truth"]
  assert t["entropy_rate"] < t["optimal_loss"] < t["conditional_entropies"][0]


@pytest.mark.slow
def test_cooldown_branches_smoke(data_dir, tmp_path, capsys):
  d = str(tmp_path / "cooldown")
  fit = _smoke("cooldown_branches", d)
  out = capsys.readouterr().out
  frames = {v: results.load(os.path.join(d, v)) for v in ("branches", "wsd", "cosine")}
  for v, df in frames.items():
    assert (df["status"] == "completed").all() and len(df) == 6, v
  br = frames["branches"].set_index(["params_nonembed", "tokens"])["eval_loss"].sort_index()
  wsd = frames["wsd"].set_index(["params_nonembed", "tokens"])["eval_loss"].sort_index()
  assert br.to_dict() == wsd.to_dict()  # a branch computes a separate WSD run of its budget, bitwise
  assert fit["flops_spent"]["branches"] < 0.8 * fit["flops_spent"]["cosine"]  # 40 + 20 % of 70 steps per size vs 70
  assert "cooldown branches:" in out and os.path.getsize(os.path.join(d, "cooldown_branches.png")) > 10_000


@pytest.mark.slow
def test_mu_transfer_smoke(data_dir, tmp_path):
  d = str(tmp_path / "mu_transfer")
  fit = _smoke("mu_transfer", d)
  _check(d, fit, {"gpt"}, ["mu_transfer"])
  for par in ("sp", "mup"):  # 4 widths x 3 lrs each; the smallest SP and μP members are the same model
    assert len(fit["optima"][par]) == 4 and all(len(v["losses"]) == 3 for v in fit["optima"][par].values())
  # Measured bitwise equal (the 125-step default run too); 1e-6 leaves room for XLA fusing the ×1.0 differently.
  assert fit["optima"]["sp"]["16"]["losses"] == pytest.approx(fit["optima"]["mup"]["16"]["losses"], rel=1e-6)


@pytest.mark.slow
def test_data_constrained_smoke(data_dir, tmp_path, capsys):
  d = str(tmp_path / "data_constrained")
  fit = _smoke("data_constrained", d)
  out = capsys.readouterr().out
  _check(d, fit, {"gpt"}, ["data_constrained"])
  df = results.load(d)
  rep = df[df["data.unique_tokens"] > 0]
  assert sorted(zip(rep["unique_tokens"], rep["tokens"] / rep["unique_tokens"])) == [
      (u, e) for u in (1280, 2560) for e in (1, 2, 4)]
  assert len(results.load(d, trunks=True)) == len(df) + 4  # a trunk per U and per grid size
  f = fit["fits"]["data_constrained/gpt"]
  assert f["stage1"]["n"] == 8 and f["repeated"] == 4 and f["params"]["R_D_star"] > 0
  assert [(r["U"], r["epochs"]) for r in fit["table"]] == [(u, e) for u in (1280, 2560) for e in (1, 2, 4)]
  assert "R_D* = " in out and "cooldown branches:" in out


@pytest.mark.slow
def test_hparam_scaling_smoke(data_dir, tmp_path):
  d = str(tmp_path / "hparam_scaling")
  fit = _smoke("hparam_scaling", d)
  _check(d, fit, {"gpt"}, ["hparams", "loss_vs_flops"])
  h = fit["fits"]["hparams/gpt"]
  assert {"a_lr", "k_lr", "a_B", "k_B"} <= set(h["params"]) and h["budgets"] == [1.5e9, 3e9]
  assert [b["runs"] for b in h["per_budget"]] == [4, 4]  # 2 lrs x 2 batch sizes per budget
  df = results.load(d)
  assert df.groupby("budget")["is_best"].sum().tolist() == [1, 1]  # one best (lr, batch) per budget
  assert set(fit["best_at_edge_per_budget"]) == {"1.5e+09", "3e+09"} and "deepseek2024" in fit["reference"]
