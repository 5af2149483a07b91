"""The GPT recipe fields (norm, mlp, qk_norm, bias, tie_embeddings; sizes.RECIPES): exact parameter counts, FLOPs
against XLA's cost analysis, the SwiGLU width rule, old configs keep their meaning and ids, and the recipe
comparison sweep's smoke config expands to two ladders with distinct ids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_accounting import count_instantiated, xla_train_flops
from test_cli_errors import _in_process

from experiments import common
from scaling import config as config_lib
from scaling import models, runid
from scaling.models import accounting, layers, sizes
from scaling.sweep import ladders, packed

MODERN = sizes.RECIPES["modern"]
ONE_FIELD = [dict(norm="rmsnorm"), dict(mlp="swiglu"), dict(qk_norm=True), dict(bias=False),
             dict(tie_embeddings=False), dict(norm="rmsnorm", bias=True, qk_norm=True)]
CASES = [MODERN] + ONE_FIELD


@pytest.mark.parametrize("recipe", CASES, ids=[sizes.recipe_name(sizes.gpt_model(64, 2, **r)) + ("-untied" if
                                              r.get("tie_embeddings") is False else "") for r in CASES])
@pytest.mark.parametrize("d_model,n_layers,pos", [(64, 2, "learned"), (96, 3, "rope"), (256, 8, "rope")])
def test_recipe_params_exact(recipe, d_model, n_layers, pos):
  m = sizes.gpt_model(d_model, n_layers, pos=pos, vocab_size=300, **recipe)
  p = accounting.params("gpt", m)
  assert p["total"] == count_instantiated("gpt", m)
  assert p["total"] == p["embed"] + p["nonembed"]


@pytest.mark.parametrize("recipe", [MODERN, dict(mlp="swiglu"), dict(qk_norm=True)], ids=["modern", "swiglu", "qknorm"])
def test_recipe_flops_match_xla(recipe):
  # Same tolerance and reason as test_accounting: norms, softmax, activations (SwiGLU's silu and product too) are
  # not counted; measured 1.5-2.3 % below XLA at this shape (2-core x86 VM, 2026-12-03).
  seq, b = 128, 2
  m = sizes.gpt_model(128, 2, vocab_size=259, max_len=seq, pos="rope", **recipe)
  ours = accounting.train_flops("gpt", m, seq) * b
  xla = xla_train_flops("gpt", m, {"inputs": (b, seq), "targets": (b, seq)})
  assert abs(ours / xla - 1) < 0.10, (ours, xla)


@pytest.mark.parametrize("d_model", [16, 48, 64, 96, 256, 768])
def test_swiglu_matches_gelu_params(d_model):
  d_ff = 4 * d_model
  f = accounting.swiglu_hidden(d_ff)
  assert f % accounting.SWIGLU_MULTIPLE == 0
  assert abs(f - 2 * d_ff / 3) <= accounting.SWIGLU_MULTIPLE / 2  # the nearest multiple of 8
  gelu = accounting.params("gpt", sizes.gpt_model(d_model, 2))["nonembed"]
  swiglu = accounting.params("gpt", sizes.gpt_model(d_model, 2, mlp="swiglu"))["nonembed"]
  # 3 d f vs 2 d d_ff per layer: off by at most 3 d * 4 (f rounds to the nearest multiple of 8).
  assert abs(swiglu - gelu) <= 2 * 3 * d_model * accounting.SWIGLU_MULTIPLE / 2


def test_rmsnorm_and_qk_norm_compute_what_they_say():
  x_BxLxD = jax.random.normal(jax.random.key(0), (2, 5, 16)) * 3 + 1
  y = layers.RMSNorm(16, rngs=nnx.Rngs(0))(x_BxLxD)
  ref = x_BxLxD / np.sqrt(np.mean(np.square(x_BxLxD), -1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
  # qk-norm: every head's q and k have unit RMS before the dot product (its scale is 1 at init).
  m = sizes.gpt_model(32, 1, n_heads=2, **MODERN)
  attn = layers.Attention(32, 2, 16, out_std=0.02, use_rope=False, dtype=jnp.float32, rngs=nnx.Rngs(0), qk_norm=m)
  q_BxLxHxK = attn.q_norm(jax.random.normal(jax.random.key(1), (2, 5, 2, 16)) * 7)
  np.testing.assert_allclose(np.sqrt(np.mean(np.square(q_BxLxHxK), -1)), 1.0, rtol=1e-4)
  plain = layers.Attention(32, 2, 16, out_std=0.02, use_rope=False, dtype=jnp.float32, rngs=nnx.Rngs(0))
  assert plain.q_norm is None and not hasattr(layers.LayerNorm(4, rngs=nnx.Rngs(0), bias=False).bias, "shape")


def test_old_configs_mean_the_gpt2_recipe():
  new = config_lib.base("gpt", "nano").to_dict()
  old = {**new, "model": {k: v for k, v in new["model"].items() if k not in accounting.RECIPE_DEFAULTS}}
  assert runid.config_diff(old, new) == []
  assert runid.config_diff(old, {**new, "model": {**new["model"], "norm": "rmsnorm"}}) == [
      "model.norm: 'layernorm' -> 'rmsnorm'"]
  # runid (jax-free) spells the defaults out: they must be the models' own.
  assert {k: runid.ADDED_DEFAULTS[f"model.{k}"] for k in accounting.RECIPE_DEFAULTS} == accounting.RECIPE_DEFAULTS
  assert sizes.recipe_name(old["model"]) == "gpt2" and sizes.recipe_name(sizes.gpt_model(64, 2, **MODERN)) == "modern"


@pytest.mark.parametrize("field,value,allowed", [("norm", "batchnorm", "layernorm, rmsnorm"),
                                                  ("mlp", "relu", "gelu, swiglu")])
def test_bad_recipe_field_is_one_line_exit_2(data_dir, tmp_path, capfd, field, value, allowed):
  out = tmp_path / "out"
  code, err = _in_process(["train", "--config=configs/gpt.py:nano", "--config.train.steps=2",
                           f"--config.model.{field}={value}", f"--workdir={out}"], capfd)
  lines = err.strip().splitlines()
  assert code == 2 and len(lines) == 1, err[-3000:]
  assert f"model.{field}" in lines[0] and allowed in lines[0], lines[0]
  assert not out.exists()


def test_bad_recipe_field_types_and_families():
  with pytest.raises(ValueError, match="model.qk_norm: 1 not allowed; allowed: True, False"):
    models.validate("gpt", sizes.gpt_model(64, 2, qk_norm=1))
  m = sizes.transformer_model(64, 2)
  m.norm = "rmsnorm"
  with pytest.raises(ValueError, match="model.norm: 'rmsnorm' is a GPT recipe field; allowed for transformer"):
    models.validate("transformer", m)


def test_recipe_comparison_smoke_config_expands_with_distinct_ids(data_dir):
  s = common.sweep_config("recipe_comparison", "smoke")
  runs = ladders.expand(s)
  ids = [r for r, _ in runs]
  assert len(set(ids)) == len(ids) == 2 * 5 * 2  # 2 recipes x 5 sizes x 2 seeds
  by = {name: [(r, c) for r, c in runs if c.tags.sweep == name] for name in ("gpt2", "modern")}
  for name, members in by.items():
    assert len({(c.model.d_model, c.model.n_layers) for _, c in members}) == 5
    assert all(sizes.recipe_name(c.model) == name for _, c in members)
  # GPT-2 ids are today's (no recipe in them); the same size in the modern recipe gets its own id.
  assert all("modern" not in r for r, _ in by["gpt2"]) and all("-modern-" in r for r, _ in by["modern"])
  assert {r.replace("-modern", "") for r, _ in by["modern"]} == {r for r, _ in by["gpt2"]}
  assert len(packed.groups(runs, s.pack)) == 10  # both seeds of a member in one step
  for lr_grid in ("lr_grid", "smoke_lr_grid"):
    grid = ladders.expand(common.sweep_config("recipe_comparison", lr_grid))
    assert len({r for r, _ in grid}) == 6 and {c.train.lr for _, c in grid} == {4e-3, 8e-3, 1.6e-2}
  allowed = "allowed: '' \\(no argument\\), 'short', 'smoke', 'lr_grid', 'short_lr_grid', 'smoke_lr_grid'"
  with pytest.raises(ValueError, match=allowed):
    common.sweep_config("recipe_comparison", "full")
