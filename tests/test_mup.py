"""μP (scaling/models/mup.py): equal to SP at the base width, width-independent activations (coordinate
check), one-line config errors."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import config, models
from scaling.models import mup, sizes
from scaling.train import optim
from scaling.train import step as step_lib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments"))
import coord_check


def member(family: str, width: int, parametrization: str, base_width: int = 32):
  if family == "dnn":
    m = sizes.dnn_model(width, 2, vocab_size=64, d_embed=8, context=4)
  else:
    make = sizes.gpt_model if family == "gpt" else sizes.transformer_model
    m = make(width, 2, n_heads=4, vocab_size=64, max_len=16, **({"tie_embeddings": False} if family == "gpt" else {}))
  m.update(parametrization=parametrization, base_width=base_width)
  return m


def batch_for(family: str, key):
  tok_BxL = jax.random.randint(key, (8, 17), 0, 64)
  b = {"inputs": tok_BxL[:, :16], "targets": tok_BxL[:, 1:], "weights": jnp.ones((8, 16))}
  if family == "transformer":
    b.update(decoder_inputs=tok_BxL[:, :16], input_mask=jnp.ones((8, 16)))
  return b


def init(family: str, m):
  """(graphdef, params): built inside one jit (eager init compiles every random draw on its own)."""
  graphdef = nnx.split(nnx.eval_shape(lambda: models.build(family, m, 0)))[0]
  return graphdef, jax.jit(lambda: nnx.to_pure_dict(nnx.split(models.build(family, m, 0))[1]))()


def one_step(family: str, m):
  """(initial params, params after one AdamW step with weight decay and clipping) as numpy."""
  t = config.base("gpt", "nano").train
  t.update(lr=1e-2, schedule="constant", warmup_steps=0)
  graphdef, params = init(family, m)
  tx, lr_fn = optim.make(t, 10, family, m)
  state = {"step": jnp.int32(0), "params": params, "opt_state": tx.init(params)}
  task = "span" if family == "transformer" else "lm"
  step = jax.jit(step_lib.make_train_step(graphdef, tx, lr_fn, task, t, mesh=None))
  new, _ = step(state, batch_for(family, jax.random.key(1)))
  return jax.tree.map(np.asarray, params), jax.tree.map(np.asarray, new["params"])


@pytest.mark.parametrize("family", ["gpt", "transformer", "dnn"])
def test_mup_at_base_width_is_sp(family):
  sp0, sp1 = one_step(family, member(family, 32, "sp"))
  mu0, mu1 = one_step(family, member(family, 32, "mup"))
  # The same random draws times factors of exactly 1.0: the initial models are bitwise equal.
  jax.tree.map(np.testing.assert_array_equal, sp0, mu0)
  # One step: the same arithmetic, except μP's chain multiplies Adam's direction by 1.0 (exact) in its own
  # optax stage, which XLA may fuse differently; f32 rounding of a 1e-2 update is ~1e-9 absolute.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8), sp1, mu1)
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(sp0), jax.tree.leaves(sp1)))


def test_mup_away_from_base_width():
  """At 4x the base width: hidden init std / 2, readout std and input std unchanged, hidden Adam lr / 4,
  logits x 1/4, attention logits sqrt(base_head_dim) / head_dim."""
  m = member("gpt", 128, "mup")
  roles = mup.roles(models.GPT, "gpt", m)
  assert (roles["embed"], roles["head"], roles["blocks"][0]["attn"]["wq"], roles["blocks"][0]["mlp"]["w_out"],
          roles["blocks"][0]["ln_attn"]["scale"]) == ("input", "output", "hidden", "hidden", "input")
  (gmu, mu), (_, sp) = init("gpt", m), init("gpt", member("gpt", 128, "sp"))
  std = lambda x: float(jnp.std(x))
  b0mu, b0sp = mu["blocks"][0], sp["blocks"][0]
  # 16k-65k draws per matrix: the sample std is within ~1 % of the init std.
  assert std(b0mu["attn"]["wq"]) / std(b0sp["attn"]["wq"]) == pytest.approx(0.5, rel=1e-6)
  assert std(b0mu["mlp"]["w_out"]) / std(b0sp["mlp"]["w_out"]) == pytest.approx(0.5, rel=1e-6)
  assert std(mu["head"]) == std(sp["head"]) and std(mu["embed"]) == std(sp["embed"])
  assert mup.lr_scales("gpt", m) == {"input": 1.0, "hidden": 0.25, "output": 1.0}
  mu_model, sp_model = nnx.merge(gmu, mu), nnx.eval_shape(lambda: models.build("gpt", member("gpt", 128, "sp"), 0))
  assert mu_model.out_mult == 0.25 and mu_model.blocks[0].attn.logit_scale == pytest.approx(8 ** 0.5 / 32)
  assert sp_model.out_mult == 1.0 and sp_model.blocks[0].attn.logit_scale == pytest.approx(32 ** -0.5)
  d = member("dnn", 128, "mup")  # He init is already μP's hidden init; the readout keeps the base's std
  (_, dm), (_, ds) = init("dnn", d), init("dnn", member("dnn", 128, "sp"))
  assert std(dm["body"]["weights"][1]) == std(ds["body"]["weights"][1])
  assert std(dm["w_out"]) / std(ds["w_out"]) == pytest.approx(2.0, rel=1e-6)


def test_coordinate_check_slopes():
  """Log-log slope of activation RMS vs width (32..256) after 3 Adam steps at lr 1e-2 (experiments/
  coord_check.py, 1 layer). Measured on the 2-core AMD box: μP |slope| <= 0.13 for every coordinate
  (embedding -0.01, block update -0.07, logits -0.12); SP block update +1.74, logits +0.63. A μP that
  forgot the hidden lr scale gives a block-update slope near +1, one without the readout multiplier a
  logits slope near SP's; the bounds sit between with margin."""
  jax.config.update("jax_disable_most_optimizations", True)  # compile time; the arithmetic is the same
  try:
    mu = coord_check.measure("mup", coord_check.WIDTHS, steps=3, n_layers=1)
    sp = coord_check.measure("sp", coord_check.WIDTHS, steps=3, n_layers=1)
  finally:
    jax.config.update("jax_disable_most_optimizations", False)
  assert coord_check.WIDTHS[-1] / coord_check.WIDTHS[0] >= 8 and len(coord_check.WIDTHS) >= 4
  for name, rms in mu.items():
    assert abs(coord_check.slope(rms[-1])) < 0.3, (name, coord_check.slope(rms[-1]))
  assert coord_check.slope(sp["block 0 update"][-1]) > 1.0
  assert coord_check.slope(sp["logits"][-1]) > 0.3


@pytest.mark.parametrize("over, match", [
    (dict(parametrization="mu"), r"model.parametrization: 'mu' not allowed; allowed: sp, mup"),
    (dict(parametrization="mup", base_width=0), r"model.base_width: .*allowed: a positive integer"),
    (dict(parametrization="mup", base_width=30), r"model.base_head_dim: .*allowed"),
    (dict(parametrization="mup", base_width=32, base_head_dim=-1), r"model.base_head_dim: got -1"),
])
def test_bad_mup_config_is_one_line(over, match):
  m = member("gpt", 64, "sp")
  m.update(**over)
  with pytest.raises(ValueError, match=match):
    models.validate("gpt", m)


def test_mup_needs_adam():
  t = config.base("gpt", "nano").train
  t.optimizer = "sgd"
  with pytest.raises(ValueError, match=r"train.optimizer: 'sgd' with model.parametrization='mup'.*allowed: adamw"):
    optim.make(t, 10, "gpt", member("gpt", 64, "mup"))


@pytest.mark.slow  # ~1 min; packing/sharding/resume are tested for SP in make test
def test_mup_run_packs_shards_and_resumes(tmp_path, data_dir):
  """A μP GPT (width 2x its base) on a data x tensor mesh: two lrs packed in one vmapped step train like
  two separate runs, and a run resumed from a mid-run checkpoint ends bitwise equal to the uninterrupted one."""
  import shutil

  from scaling.train import loop
  from test_train import params_of, tiny
  cs = []
  for lr in (3e-3, 1.5e-3):
    c = tiny(steps=6, train__checkpoint_every=3, train__lr=lr, model__parametrization="mup", model__base_width=16)
    c.mesh.update(data=4, tensor=2)
    cs.append(c)
  singles = [loop.train(c, str(tmp_path / f"single{i}")) for i, c in enumerate(cs)]
  together = loop.train_members(cs, [str(tmp_path / f"packed{i}") for i in range(2)])
  # Packed vs separate: the same math, vmapped; tolerance as tests/test_sweep_packed.py (f32 reduction order).
  np.testing.assert_allclose([r["eval_loss"] for r in together], [r["eval_loss"] for r in singles], rtol=2e-4)
  assert singles[0]["eval_loss"] != singles[1]["eval_loss"]
  _, ref = params_of(str(tmp_path / "single0"))
  wd = tmp_path / "single0"
  shutil.rmtree(wd / "checkpoints" / "6")
  os.remove(wd / "result.json")
  again = loop.train(cs[0], str(wd))  # resumes at step 3: μP's optimizer state restores like SP's
  assert again["status"] == "completed" and again["eval_loss"] == singles[0]["eval_loss"]
  jax.tree.map(np.testing.assert_array_equal, params_of(str(wd))[1], ref)
