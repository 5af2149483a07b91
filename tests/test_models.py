"""Families: sharded forward == single-device forward; KV-cache decoding; config validation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling import config, models, parallel
from scaling.models import sizes
from scaling.train import step as step_lib
import optax


def forward_on(mesh_cfg, family, m, inputs):
  mesh = parallel.make_mesh(ml_collections.ConfigDict(mesh_cfg))
  graphdef, state, sh = step_lib.init_state(family, m, 0, optax.sgd(0.1), mesh, models.build)
  fn = jax.jit(lambda p, *xs: nnx.merge(graphdef, p)(*xs), in_shardings=(sh["params"],) + tuple(
      parallel.batch_sharding(mesh, np.ndim(x)) for x in inputs))
  return np.asarray(fn(state["params"], *inputs)), state


FAMILIES = [
    ("gpt", sizes.gpt_model(128, 2, vocab_size=256, max_len=16), lambda r: (r.integers(0, 256, (8, 16)),)),
    ("gpt", sizes.gpt_model(128, 2, vocab_size=259, max_len=16, pos="rope", tie_embeddings=False),
     lambda r: (r.integers(0, 259, (8, 16)),)),
    ("transformer", sizes.transformer_model(128, 4, vocab_size=256, max_len=16),
     lambda r: (r.integers(0, 256, (8, 16)), r.integers(0, 256, (8, 8)))),
    ("dnn", sizes.dnn_model(64, 2, vocab_size=256), lambda r: (r.integers(0, 256, (8, 16)),)),
    ("dnn", sizes.dnn_model(64, 2, head="classify", num_features=12, num_classes=4),
     lambda r: (r.normal(size=(8, 12)).astype(np.float32),)),
]


@pytest.mark.parametrize("family,m,make_inputs", FAMILIES, ids=[f[0] + str(i) for i, f in enumerate(FAMILIES)])
def test_sharded_forward_matches_single_device(family, m, make_inputs):
  assert jax.device_count() == 8
  inputs = make_inputs(np.random.default_rng(0))
  mesh1 = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), parallel.MESH_AXES)
  g, st, sh = step_lib.init_state(family, m, 0, optax.sgd(0.1), mesh1, models.build)
  one = np.asarray(jax.jit(lambda p, *xs: nnx.merge(g, p)(*xs))(st["params"], *inputs))
  many, state = forward_on(dict(data=4, fsdp=1, tensor=2), family, m, inputs)
  np.testing.assert_allclose(many, one, rtol=2e-4, atol=2e-4)
  fsdp, _ = forward_on(dict(data=2, fsdp=2, tensor=2), family, m, inputs)
  np.testing.assert_allclose(fsdp, one, rtol=2e-4, atol=2e-4)
  # The rules really shard: some parameter is split over `tensor` on the (4, 2) mesh.
  specs = parallel.describe(state["params"])
  assert any("tensor" in str(s) for s in specs.values()), specs


def test_kv_cache_decoding_matches_full_forward():
  m = sizes.gpt_model(64, 2, vocab_size=50, max_len=12, pos="rope")
  model = models.build("gpt", m)
  tokens = jnp.array(np.random.default_rng(1).integers(0, 50, (2, 12)))
  full = model(tokens)
  cache = model.init_cache(2)
  logits, cache = model(tokens[:, :5], cache=cache)  # prefill
  steps = [logits]
  for i in range(5, 12):
    logits, cache = model(tokens[:, i:i + 1], cache=cache)
    steps.append(logits)
  np.testing.assert_allclose(np.concatenate(steps, 1), full, rtol=1e-4, atol=1e-4)


def test_causality():
  m = sizes.gpt_model(64, 2, vocab_size=50, max_len=10)
  model = models.build("gpt", m)
  a = jnp.array(np.random.default_rng(2).integers(0, 50, (1, 10)))
  b = a.at[:, 7:].set(0)
  np.testing.assert_allclose(model(a)[:, :7], model(b)[:, :7], rtol=1e-5, atol=1e-5)


def bad(path: str, value):
  c = config.base("gpt", "nano")
  c.model.vocab_size = 259
  section, field = path.rsplit(".", 1) if "." in path else ("", path)
  target = c
  for part in section.split(".") if section else []:
    target = target[part]
  target[field] = value
  return c


@pytest.mark.parametrize("path,value,match", [
    ("model.n_heads", 3, "model.d_model: 64 is not divisible by model.n_heads=3"),
    ("model.d_model", -64, "model.d_model: must be a positive integer"),
    ("model.n_layers", 0, "model.n_layers: must be a positive integer"),
    ("model.vocab_size", 1, "model.vocab_size: must be an integer >= 2"),
    ("model.max_len", 0, "model.max_len: must be a positive integer"),
    ("data.seq_len", 0, "data.seq_len: must be a positive integer"),
    ("model.pos", "alibi", "model.pos: 'alibi' not allowed; allowed: learned, rope"),
    ("family", "lstm", "family: unknown 'lstm'"),
    ("train.schedule", "exp", "train.schedule: unknown 'exp'; allowed: cosine, wsd, constant, linear"),
])
def test_validation_names_the_field(path, value, match):
  with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")) as e:
    config.validate(bad(path, value))
  assert "\n" not in str(e.value)


def test_unknown_size_name():
  with pytest.raises(ValueError, match="size: unknown 'huge' for gpt; allowed: nano"):
    sizes.named("gpt", "huge")


def test_mesh_and_batch_validation():
  c = bad("mesh.data", 3)
  with pytest.raises(ValueError, match="mesh: data\\*fsdp\\*tensor = 3"):
    config.validate(c, 8)
  c = bad("data.batch_size", 12)
  with pytest.raises(ValueError,
                     match="data.batch_size: the \\(micro-\\)batch 12 is not divisible by the data axes data\\*fsdp=8"):
    config.validate(c, 8)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dense_gradients_match_autodiff(dtype):
  """layers.dense has a hand-written backward (for XLA:CPU speed); it must be the einsum's gradient."""
  from scaling.models import layers
  r = np.random.default_rng(3)
  x = jnp.asarray(r.normal(size=(4, 6, 8)), dtype)
  w = jnp.asarray(r.normal(size=(8, 5)), dtype)
  g = jnp.asarray(r.normal(size=(4, 6, 5)), dtype)
  ours = jax.vjp(layers.dense, x, w)[1](g)
  ref = jax.vjp(lambda a, b: jnp.einsum("bld,df->blf", a, b), x, w)[1](g)
  tol = 1e-5 if dtype == jnp.float32 else 3e-2
  for a, b in zip(ours, ref):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("causal,masked", [(True, False), (False, True), (True, True), (False, False)])
def test_attention_matches_jax_nn(dtype, causal, masked):
  """layers.attention (written out for CPU speed) must be jax.nn.dot_product_attention, forward and
  backward, including rows whose keys are all masked (padding)."""
  from scaling.models import layers
  r = np.random.default_rng(4)
  q, k, v = (jnp.asarray(r.normal(size=(2, 7, 3, 8)), dtype) for _ in range(3))
  mask = jnp.asarray(r.random((2, 7, 7)) > 0.3).at[0, 2].set(False) if masked else None
  g = jnp.asarray(r.normal(size=(2, 7, 3, 8)), dtype)
  ours = jax.vjp(lambda *a: layers.attention(*a, mask_BxLxS=mask, is_causal=causal), q, k, v)
  ref = jax.vjp(lambda *a: jax.nn.dot_product_attention(*a, mask=None if mask is None else mask[:, None],
                                                         is_causal=causal), q, k, v)
  tol = 1e-5 if dtype == jnp.float32 else 5e-2
  for a, b in zip((ours[0], *ours[1](g)), (ref[0], *ref[1](g))):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU "
                    "(run with JAX_PLATFORMS=cuda)")
def test_attention_uses_cudnn_on_gpu_and_matches_xla():
  """On GPU, bf16 causal attention runs cuDNN's fused kernel, and equals the XLA form, forward and backward."""
  from scaling.models import layers
  r = np.random.default_rng(6)
  q, k, v, g = (jnp.asarray(r.normal(size=(2, 256, 4, 64)), jnp.bfloat16) for _ in range(4))

  def run(impl):
    f = jax.jit(lambda *a: jax.vjp(lambda *b: layers.attention(*b, is_causal=True, impl=impl), *a)[1](g))
    fwd = jax.jit(lambda *a: layers.attention(*a, is_causal=True, impl=impl))
    return fwd.lower(q, k, v).as_text(), (fwd(q, k, v), *f(q, k, v))

  hlo_auto, ours = run("auto")
  hlo_xla, ref = run("xla")
  assert "cudnn" in hlo_auto.lower() and "cudnn" not in hlo_xla.lower()
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=5e-2, atol=5e-2)


def test_layer_norm_gradients_match_autodiff():
  """layers.layer_norm has a closed-form backward; it must be autodiff's gradient of the plain formula."""
  from scaling.models import layers
  r = np.random.default_rng(5)
  x = jnp.asarray(r.normal(size=(3, 5, 16)) * 3 + 1, jnp.float32)
  scale, bias = jnp.asarray(r.normal(size=16), jnp.float32), jnp.asarray(r.normal(size=16), jnp.float32)
  g = jnp.asarray(r.normal(size=(3, 5, 16)), jnp.float32)

  def plain(x, s, b):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(jnp.square(x - mean).mean(-1, keepdims=True) + 1e-5) * s + b

  ours, ref = jax.vjp(layers.layer_norm, x, scale, bias), jax.vjp(plain, x, scale, bias)
  for a, b in zip((ours[0], *ours[1](g)), (ref[0], *ref[1](g))):
    assert a.shape == b.shape
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
