"""Generation: KV-cache decoding draws the same tokens as full recompute; `scaling sample` end to end."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from scaling import config, models, sample
from scaling.models import sizes
from scaling.train import loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
  """A tiny GPT trained for a few dozen steps (so its next-token distributions are far from flat)."""
  c = config.base("gpt", "nano")
  c.model.update(d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=48, pos="rope")
  c.data.update(seq_len=48, batch_size=16)
  c.train.update(steps=40, lr=1e-2, warmup_steps=4, eval_batches=1, progress=False)
  c.mesh.update(data=1, num_devices=1)
  d = str(tmp_path_factory.mktemp("sample_run"))
  assert loop.train(c, d)["status"] == "completed"
  return d


@pytest.mark.parametrize("which,temperature,top_k", [("trained", 1.0, 0), ("untrained", 0.8, 5)])
def test_kv_cache_matches_naive_decoding(run_dir, which, temperature, top_k):
  if which == "trained":  # rotary positions, tied head, real next-token distributions
    model, c = sample.load_model(run_dir)
    max_len = c.model.max_len
  else:  # learned positions and an untied head: the model's other branches
    max_len = 24
    model = models.build("gpt", sizes.gpt_model(32, 1, n_heads=2, vocab_size=259, max_len=max_len,
                                                tie_embeddings=False), seed=1)
  prompt = np.array([[258] + list(b"import os\n"), [258] + list(b"def f(x):\n")], np.int32)
  n_new = max_len - prompt.shape[1]  # right up to max_len: the cache's last slot is used too
  key = jax.random.key(3)
  graphdef, params = nnx.split(model)
  generate = sample.make_generate(graphdef, n_new, temperature, top_k)  # one compile for both keys
  fast = np.asarray(generate(params, prompt, key))
  slow = sample.generate_naive(model, prompt, n_new, key=key, temperature=temperature, top_k=top_k)
  assert fast.shape == (2, n_new)
  # Exact although the cache and the recompute round differently (logits ~1e-7 apart): a draw changes
  # only if two Gumbel-perturbed logits tie that closely, odds ~1e-5 over these draws, on any CPU.
  np.testing.assert_array_equal(fast, slow)
  other = np.asarray(generate(params, prompt, jax.random.key(4)))
  assert (other != fast).any()  # the key really drives the sampling


def test_top_k_keeps_only_the_k_most_likely():
  logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 2000, np.float32))
  keys = jax.random.key(0)
  toks = np.asarray(sample.sample_logits(logits, keys, 1.0, 2))
  assert set(np.unique(toks)) == {0, 1}
  assert 0.55 < (toks == 0).mean() < 0.70  # renormalized: 0.5 / 0.8 = 0.625
  assert (np.asarray(sample.sample_logits(logits, keys, 0.0, 0)) == 0).all()


def test_sample_run_stops_at_max_len(run_dir, capsys):
  # Asking for more than fits stops at max_len (48 = EOS + 7 prompt bytes + 40 new) and says so.
  text = sample.sample_run(run_dir, prompt="import ", max_tokens=500, seed=7, temperature=0.0)
  err = capsys.readouterr().err
  assert text.startswith("import ") and len(text) <= 47  # at most one character per byte token
  assert "max_len=48" in err or "end-of-document" in err


def test_sample_errors(run_dir, tmp_path):
  with pytest.raises(ValueError, match="prompt: .*max_len=48"):
    sample.sample_run(run_dir, prompt="x" * 60)
  with pytest.raises(ValueError, match="top_k"):
    sample.sample_run(run_dir, top_k=1000)
  with pytest.raises(ValueError, match="temperature"):
    sample.sample_run(run_dir, temperature=-1.0)
  with pytest.raises(ValueError, match="workdir: .*no config.json"):
    sample.sample_run(str(tmp_path))


def test_cli_sample_is_deterministic(run_dir):
  """`scaling sample` in a fresh process prints exactly what sample_run returns here for that seed."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  out = subprocess.run([sys.executable, "-m", "scaling.cli", "sample", f"--workdir={run_dir}", "--prompt=def ",
                        "--max_tokens=10", "--seed=1"], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  here = sample.sample_run(run_dir, prompt="def ", max_tokens=10, seed=1)
  assert here.startswith("def ") and len(here) <= 14
  assert out.stdout == here + "\n"
