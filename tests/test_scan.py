"""model.scan_layers and model.remat (scaling/models/stack.py): the scanned stack computes what the unrolled
one does (forward, gradients, KV-cache sampling, packing), checkpoints cross layouts, remat policies change
memory, not results.

Tolerances: scanned vs unrolled runs the same f32 operations, but XLA fuses and orders a loop body differently
from straight-line code (and accumulates the stacked weight gradients in the scan's backward loop), so sums
can reassociate: relative 1e-5-level differences, nowhere near a wrong result (a wrong layer order or a
missing block moves the loss by > 1e-2)."""

import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from scaling import models, parallel, sample
from scaling.models import sizes, stack
from scaling.train import members
from scaling.train import checkpoint, finetune, loop
from scaling.train import step as step_lib

RTOL, ATOL = 1e-4, 1e-6  # f32 reassociation (module docstring)


def _gpt(scan, **kw):
  return sizes.gpt_model(32, 2, n_heads=2, vocab_size=40, max_len=16, pos="rope", scan_layers=scan, **kw)



def _transformer(scan, **kw):
  return sizes.transformer_model(32, 2, n_heads=2, vocab_size=40, max_len=16, scan_layers=scan, **kw)  # 1 + 1 layers


CASES = [("gpt", _gpt, lambda r: (r.integers(0, 40, (2, 16)),)),
         ("transformer", _transformer, lambda r: (r.integers(0, 40, (2, 12)), r.integers(0, 40, (2, 8))))]


def _pair(family, make, **kw):
  """(unrolled graphdef, its params, scanned graphdef, the same params stacked)."""
  g_u, st = nnx.split(models.build(family, make(False, **kw), seed=0))
  g_s, abs_s = nnx.split(nnx.eval_shape(lambda: models.build(family, make(True, **kw), seed=0)))
  p_u = nnx.to_pure_dict(st)
  p_s = stack.to_layout(p_u, True)
  assert jax.tree.structure(p_s) == jax.tree.structure(nnx.to_pure_dict(abs_s))
  return g_u, p_u, g_s, p_s


def _loss_and_grads(graphdef, params, inputs):
  def loss(p):
    logits = nnx.merge(graphdef, p)(*inputs)
    return jnp.mean(jax.nn.log_softmax(logits)[..., 0])
  return jax.jit(jax.value_and_grad(loss))(params)


# Remat policies under test per family, (scanned, unrolled or None): together every policy, and both layouts'
# code paths (each compile costs seconds; test_every_remat_policy_checkpoints_the_blocks covers the rest).
POLICIES = {"gpt": ("block", "dots_saveable"), "transformer": ("dots_with_no_batch_dims_saveable", None)}


@pytest.mark.parametrize("family,make,inputs", CASES, ids=[c[0] for c in CASES])
def test_scanned_and_rematerialized_match_unrolled(family, make, inputs):
  """Forward and gradients: scanned == unrolled, and a remat policy (scanned and unrolled) == none."""
  x = inputs(np.random.default_rng(0))
  g_u, p_u, g_s, p_s = _pair(family, make)
  stacked = p_s["blocks" if family == "gpt" else "encoder"]["attn"]["wq"]
  assert stacked.shape[0] == (2 if family == "gpt" else 1)  # one stacked tensor, layers leading
  l_u, gr_u = _loss_and_grads(g_u, p_u, x)
  gr_u = stack.to_layout(gr_u, True)
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
  l_s, gr_s = _loss_and_grads(g_s, p_s, x)
  close(l_s, l_u)
  jax.tree.map(close, gr_s, gr_u)
  for scan, policy in zip((True, False), POLICIES[family]):
    if policy is None:
      continue
    g_r = _pair(family, make, remat=policy)[2 if scan else 0]
    l_r, gr_r = _loss_and_grads(g_r, p_s if scan else p_u, x)
    close(l_r, l_u)
    jax.tree.map(close, gr_r if scan else stack.to_layout(gr_r, True), gr_u)
  # The layout round trip is exact, keys included (nnx.List indices come back as ints).
  back = stack.to_layout(p_s, False)
  assert jax.tree.structure(back) == jax.tree.structure(p_u)
  jax.tree.map(np.testing.assert_array_equal, back, p_u)


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scanned"])
def test_every_remat_policy_checkpoints_the_blocks(scan):
  """Each policy really wraps the blocks in jax.checkpoint (traced only; the results are compared above)."""
  x = jnp.zeros((2, 16), jnp.int32)
  for policy in stack.REMAT:
    graphdef, params = nnx.split(nnx.eval_shape(lambda: models.build("gpt", _gpt(scan, remat=policy))))
    jaxpr = str(jax.make_jaxpr(lambda p: nnx.merge(graphdef, p)(x))(nnx.to_pure_dict(params)))
    n = len(re.findall(r"\b(?:remat\d*|checkpoint)\[", jaxpr))  # jax.checkpoint's primitive
    assert n == (0 if policy == "none" else 1 if scan else 2), (policy, n)


def test_scanned_sampling_draws_the_unrolled_tokens():
  g_u, p_u, g_s, p_s = _pair("gpt", lambda scan: sizes.gpt_model(32, 2, n_heads=2, vocab_size=40, max_len=20,
                                                                   scan_layers=scan, remat="block"))
  prompt = np.array([[1, 5, 7, 9], [2, 4, 6, 8]], np.int32)
  key = jax.random.key(0)
  unrolled = np.asarray(sample.make_generate(g_u, 12, 1.0, 0)(p_u, prompt, key))
  scanned = np.asarray(sample.make_generate(g_s, 12, 1.0, 0)(p_s, prompt, key))
  np.testing.assert_array_equal(scanned, unrolled)
  # The stacked cache really is one array per k / v with a layer axis.
  cache = nnx.merge(g_s, p_s).init_cache(2)
  assert cache["k"].shape == (2, 2, 20, 2, 16)


def test_sharded_scanned_forward_replicates_the_layer_axis():
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(data=2, fsdp=2, tensor=2)))
  m = sizes.gpt_model(64, 2, n_heads=4, vocab_size=40, max_len=16, scan_layers=True)
  graphdef, state, sh = step_lib.init_state("gpt", m, 0, optax.sgd(0.1), mesh, models.build)
  specs = parallel.describe(state["params"])
  wq = next(s for k, s in specs.items() if "blocks" in k and "wq" in k)
  assert wq[0] is None and "fsdp" in str(wq) and "tensor" in str(wq), wq  # layers replicated, the rest sharded
  x = np.random.default_rng(0).integers(0, 40, (8, 16))
  one = nnx.merge(graphdef, jax.device_get(state["params"]))(jnp.asarray(x))
  many = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t))(state["params"], x)
  np.testing.assert_allclose(many, one, rtol=2e-4, atol=2e-4)


def _write_checkpoint(run_dir, family, m):
  params = nnx.to_pure_dict(nnx.split(models.build(family, m, seed=3))[1])
  ck = checkpoint.Checkpointer(run_dir)
  ck.save(5, {"step": jnp.int32(5), "params": params, "opt_state": optax.adam(1e-3).init(params)}, {})
  ck.close()
  return params


@pytest.mark.parametrize("written_scanned", [False, True], ids=["unrolled->scanned", "scanned->unrolled"])
def test_checkpoint_restores_in_the_other_layout(tmp_path, written_scanned):
  saved = _write_checkpoint(str(tmp_path), "transformer", _transformer(written_scanned))
  assert finetune.saved_layout(str(tmp_path)) is written_scanned
  # The reader's model is in the other layout, its parameters on a (data, fsdp, tensor) mesh.
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(data=2, fsdp=2, tensor=2)))
  abs_state = nnx.split(nnx.eval_shape(lambda: models.build("transformer", _transformer(not written_scanned))))[1]
  sh = nnx.to_pure_dict(parallel.state_shardings(abs_state, mesh))
  want = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), nnx.to_pure_dict(abs_state), sh)
  step, got = finetune.restore_params(str(tmp_path), want)
  assert step == 5
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(np.testing.assert_array_equal, got, stack.to_layout(saved, not written_scanned))
  jax.tree.map(lambda a, w: a.sharding.is_equivalent_to(w.sharding, a.ndim) or pytest.fail(str(a.sharding)), got, want)


def test_resume_in_the_other_layout_is_a_one_line_error(tmp_path):
  _write_checkpoint(str(tmp_path), "gpt", _gpt(False))
  c = ml_collections.ConfigDict(dict(family="gpt", model=_gpt(True)))
  with pytest.raises(ValueError, match=r"^model\.scan_layers: True but the checkpoints .* allowed: False"):
    loop.check_resume_layout(c, str(tmp_path))
  c.model.scan_layers = False
  loop.check_resume_layout(c, str(tmp_path))  # the same layout resumes


def test_packing_vmaps_a_scanned_model():
  """K scanned members (members.init: the init vmapped over seeds, the layer scan inside the vmap) score like K
  single models. Forward only: the vmapped train step around it is covered by test_sweep_packed."""
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(data=1, fsdp=1, tensor=1)), jax.devices()[:1])
  m = _gpt(True)
  graphdef, state, _, _ = members.init("gpt", m, [0, 1], optax.sgd(0.1), mesh)
  assert state["params"]["blocks"]["attn"]["wq"].shape[:2] == (2, 2)  # [members, layers, ...]
  x = np.random.default_rng(0).integers(0, 40, (4, 17)).astype(np.int32)
  batch = {"inputs": x[:, :-1], "targets": x[:, 1:], "weights": np.ones((4, 16), np.float32)}
  got = members.make_eval(graphdef, "lm")(state["params"], batch)
  single = jax.jit(lambda p: step_lib.loss_sums(*step_lib.forward(nnx.merge(graphdef, p), batch, "lm"), 0.0))
  for j, seed in enumerate([0, 1]):
    params = nnx.to_pure_dict(nnx.split(models.build("gpt", m, seed=seed))[1])
    np.testing.assert_allclose(got["ce"][j], single(params)["ce"], rtol=RTOL)
  assert abs(float(got["ce"][0] - got["ce"][1])) > 1e-3  # the members really differ
