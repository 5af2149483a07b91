"""The memory rule (scaling/train/fit_memory.py): a member that does not fit a chip gets accum_steps or remat,
and then passes the run's own preflight (XLA's analysis of the compiled step on a device that small); a knob
the sweep sets explicitly is kept; the paper-scale ':full' sweeps fit an H100 node as written."""

import importlib.util
import os

import ml_collections
import pytest

from scaling.sweep import ladders, plan
from scaling.train import budget
from scaling.train import fit_memory, loop, memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sweep(**overrides) -> ml_collections.ConfigDict:
  """One GPT member whose activations dominate its memory: d_model 64, 6 layers, 16 x 512 tokens."""
  s = ladders.defaults()
  s.name = "fit"
  s.sizes = ("nano",)
  s.tokens = 16 * 512 * 2
  s.overrides.model = ml_collections.ConfigDict(dict(d_model=64, n_layers=6, n_heads=4, d_ff=256, max_len=512))
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=512, batch_size=16))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=1, progress=False, peak_flops=1e11))
  for path, v in overrides.items():
    section, field = path.split("__")
    s.overrides[section][field] = v
  return s


def _as_written(s) -> ml_collections.ConfigDict:
  (_, c), = ladders.expand(s)
  return c


def _target(c, devices: int = 8) -> fit_memory.Target:
  """A device with room for the as-written member's estimate / 1.5: it does not fit as written."""
  return fit_memory.Target("test", fit_memory.need(c, budget.shapes(c), devices) / 1.5 / memory.HEADROOM, "test",
                           devices)


def _preflight(c, t: fit_memory.Target, monkeypatch):
  """The run's own check (loop.build: analytic estimate, then XLA's figures for the compiled step) on a device
  of t's capacity; raises memory.TooBig when it does not fit."""
  monkeypatch.setattr(memory, "capacity", lambda: (int(t.capacity), "test device"))
  return loop.build(loop.prepare(c))


def test_a_member_that_does_not_fit_gets_accum_steps_and_then_passes_the_preflight(data_dir, monkeypatch):
  s = _sweep()
  c = _as_written(s)
  t = _target(c)
  with pytest.raises(memory.TooBig, match=r"^memory: the train step needs .* \(XLA: "):
    _preflight(c, t, monkeypatch)  # as written it really does not fit: XLA's own figure says so
  (_, fitted), = ladders.expand(s, fit=t)
  assert fitted.train.accum_steps == 2 and fitted.model.remat == "none"  # the cheapest: no recompute
  assert fitted.tags.memory_fit == "accum 2 (test)"
  assert fit_memory.need(fitted, budget.shapes(fitted), 8) <= memory.HEADROOM * t.capacity
  b = _preflight(fitted, t, monkeypatch)
  assert 0 < b["memory"]["peak"] <= memory.HEADROOM * t.capacity


def test_an_explicit_accum_steps_is_kept_and_remat_fits_instead(data_dir, monkeypatch):
  s = _sweep(train__accum_steps=1)  # the sweep says: no micro-batches
  t = _target(_as_written(s))
  (_, fitted), = ladders.expand(s, fit=t)
  assert fitted.train.accum_steps == 1
  assert (fitted.model.remat, fitted.model.scan_layers) == ("block", True)
  assert fitted.tags.memory_fit == "remat block (scan) (test)"
  b = _preflight(fitted, t, monkeypatch)
  assert 0 < b["memory"]["peak"] <= memory.HEADROOM * t.capacity
  # Every knob pinned: the member stays as written, and the plan marks it.
  s = _sweep(train__accum_steps=1, model__remat="none")
  s.overrides.mesh = ml_collections.ConfigDict(dict(fsdp=1))
  c = _as_written(s)
  (_, kept), = ladders.expand(s, fit=t)
  assert kept.to_dict() | {"tags": None} == c.to_dict() | {"tags": None}
  assert kept.tags.memory_fit == "- (test)"
  assert fit_memory.pinned(s.overrides) == {"accum_steps", "remat", "fsdp"}


def test_the_sweep_config_names_its_chip(data_dir):
  s = _sweep()
  s.executor.chip = "h100"
  (_, c), = ladders.expand(s)  # fits an H100 as written: unchanged, tagged
  assert c.tags.memory_fit == "- (h100)" and c.train.accum_steps == 1
  s.executor.chip = "tpu9"
  with pytest.raises(ValueError, match=r"^executor.chip: 'tpu9'; allowed: '' \(no memory rule\), h100"):
    ladders.expand(s)


def _config(name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", "sweeps", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config("full")


@pytest.mark.parametrize("name", ["kaplan", "chinchilla", "gpt_ladder"])
def test_full_sweeps_fit_an_h100_node_as_written(data_dir, name):
  s = _config(name)
  b = plan.budget(s, "h100")
  df = plan.table(s, b)
  assert df["fits"].all(), df[~df["fits"]][["run_id", "fit", "bytes_per_device"]]
  assert (df["bytes_per_device"] <= memory.HEADROOM * 80e9).all()
  written = plan.table(s, b, rule=False)
  assert not written["fits"].all()  # the largest members did not fit without the rule
  assert df["run_id"].tolist() == written["run_id"].tolist()
  changed = df["fit"] != "-"
  assert changed.tolist() == (~written["fits"]).tolist()  # exactly the members that did not fit were changed
  # The time includes remat's recompute: 4/3 of the FLOPs' time for 'block'.
  remat = df["fit"].str.startswith("remat block")
  for _, r in df.iterrows():
    assert r["device_hours"] == pytest.approx(r["flops"] * (4 / 3 if remat[_] else 1) / (b.peak * b.mfu) / 3600,
                                              rel=1e-12)
  text = plan.format_table(df, b)
  assert " !" not in text and "set by the memory rule" in text
