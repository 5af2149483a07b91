"""Coordinate check (Yang et al. 2022, Tensor Programs V Fig. 5; microsoft/mup's standard test): RMS of
each layer's activations after t = 0..steps Adam steps, for GPTs of growing width (×8), SP vs μP.

Under SP with one lr for all widths, Adam's updates to a hidden weight move its output by ~lr * fan_in, so
activations grow with width after the first step; under μP (scaling/models/mup.py) they stay put. The
figure has one panel per (parametrization, coordinate), RMS vs width, one line per step; the table prints
the log-log slope of RMS vs width at the last step (μP: ~0, SP: > 0).

`python experiments/coord_check.py [--out=DIR] [--steps=5] [--lr=0.01]` (~1 min on 2 CPU cores).
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from flax import nnx

from scaling import config as config_lib, models
from scaling.models import sizes
from scaling.train import optim
from scaling.train import step as step_lib

WIDTHS = (32, 64, 128, 256)
BASE_WIDTH = 32
LABELS = {"sp": "SP", "mup": "μP"}


def run_config(width: int, parametrization: str, lr: float, steps: int, n_layers: int = 2, vocab: int = 64,
               seq_len: int = 32):
  """A GPT of `width` with 4 heads (head dim grows with width, so μP's 1/d_head attention matters)."""
  c = config_lib.base("gpt", "nano")
  c.model = sizes.gpt_model(width, n_layers, n_heads=4, vocab_size=vocab, max_len=seq_len,
                            parametrization=parametrization, base_width=BASE_WIDTH)
  # One constant lr, no decay or clipping: the coordinates move only by what the parametrization says.
  c.train.update(lr=lr, steps=steps, schedule="constant", warmup_steps=0, weight_decay=0.0, grad_clip=0.0)
  return c


def coordinates(model, tokens_BxL: jax.Array) -> dict[str, jax.Array]:
  """RMS of the embedding output, of each block's contribution to the residual stream, and of the logits."""
  out = {}
  positions_BxL = jnp.broadcast_to(jnp.arange(tokens_BxL.shape[1]), tokens_BxL.shape)
  x_BxLxD = jnp.take(model.embed[...], tokens_BxL, axis=0)
  if model.cfg.pos == "learned":
    x_BxLxD = x_BxLxD + jnp.take(model.pos_embed[...], positions_BxL, axis=0)
  out["embedding"] = x_BxLxD
  for i, block in enumerate(model.blocks):
    y_BxLxD, _ = block(x_BxLxD, positions_BxL, is_causal=True)
    out[f"block {i} update"] = y_BxLxD - x_BxLxD
    x_BxLxD = y_BxLxD
  out["logits"] = model(tokens_BxL)
  return {k: jnp.sqrt(jnp.mean(jnp.square(v.astype(jnp.float32)))) for k, v in out.items()}


def measure(parametrization: str, widths=WIDTHS, steps: int = 5, lr: float = 1e-2, seed: int = 0,
            batch: int = 16, n_layers: int = 2) -> dict[str, np.ndarray]:
  """coordinate -> RMS array [steps + 1, len(widths)], on one fixed batch of random tokens that the
  model is trained on (the mup coord check's recipe: few steps, a large lr, the same data for every width)."""
  rms = {}
  for j, w in enumerate(widths):
    c = run_config(w, parametrization, lr, steps, n_layers)
    tokens_BxL = jax.random.randint(jax.random.key(seed), (batch, 33), 0, c.model.vocab_size)
    b = {"inputs": tokens_BxL[:, :-1], "targets": tokens_BxL[:, 1:], "weights": jnp.ones((batch, 32))}
    models.validate("gpt", c.model)
    graphdef = nnx.split(nnx.eval_shape(lambda: models.build("gpt", c.model, seed)))[0]
    tx, lr_fn = optim.make(c.train, steps, "gpt", c.model)
    train_step = step_lib.make_train_step(graphdef, tx, lr_fn, "lm", c.train, mesh=None)
    coords = lambda p: coordinates(nnx.merge(graphdef, p), b["inputs"])

    @jax.jit
    def trajectory():  # one compile per width: init, then the steps as a scan
      params = nnx.to_pure_dict(nnx.split(models.build("gpt", c.model, seed))[1])
      state = {"step": jnp.int32(0), "params": params, "opt_state": tx.init(params)}

      def body(s, _):
        return train_step(s, b)[0], coords(s["params"])
      last, per_step = jax.lax.scan(body, state, None, length=steps)
      return jax.tree.map(lambda a, z: jnp.concatenate([a, z[None]]), per_step, coords(last["params"]))

    for k, v in trajectory().items():
      rms.setdefault(k, np.zeros((steps + 1, len(widths))))[:, j] = np.asarray(v)
  return rms


def slope(rms_w: np.ndarray, widths=WIDTHS) -> float:
  """Least-squares slope of log RMS vs log width."""
  return float(np.polyfit(np.log(widths), np.log(rms_w), 1)[0])


def figure(results: dict[str, dict[str, np.ndarray]], widths, lr: float, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(next(iter(results.values())))
  fig, axes = plt.subplots(len(results), len(names), figsize=(3.1 * len(names), 3.0 * len(results)),
                           sharex=True, squeeze=False)
  for r, (par, rms) in enumerate(results.items()):
    steps = rms[names[0]].shape[0]
    colors = plt.cm.viridis(np.linspace(0, 0.9, steps))
    for col, name in enumerate(names):
      ax = axes[r, col]
      for t in range(steps):
        ax.plot(widths, rms[name][t], "o-", color=colors[t], ms=3, label=f"t={t}")
      ax.set_xscale("log", base=2)
      ax.set_xticks(widths, [str(w) for w in widths])
      ax.set_yscale("log")
      ax.set_title(f"{LABELS[par]}: {name}\nslope at t={steps - 1}: {slope(rms[name][-1], widths):+.2f}", fontsize=9)
      if r == len(results) - 1:
        ax.set_xlabel("width (d_model)")
      if col == 0:
        ax.set_ylabel("activation RMS")
  axes[0, -1].legend(fontsize=7, title="Adam step", title_fontsize=7)
  fig.suptitle(f"Coordinate check: GPT 2 layers, 4 heads, Adam lr {lr:g} constant, base width {BASE_WIDTH} "
               "(flat lines = width-independent activations)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", default=os.path.join("sweeps", "coord_check"))
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--lr", type=float, default=1e-2)
  a = p.parse_args(argv)
  os.makedirs(a.out, exist_ok=True)
  results = {par: measure(par, WIDTHS, a.steps, a.lr) for par in ("sp", "mup")}
  print(f"log-log slope of activation RMS vs width ({WIDTHS[0]}..{WIDTHS[-1]}) after {a.steps} Adam steps, lr {a.lr:g}")
  print(f"{'coordinate':<18} {'SP':>7} {'muP':>7}")
  for name in results["sp"]:
    print(f"{name:<18} {slope(results['sp'][name][-1]):+7.3f} {slope(results['mup'][name][-1]):+7.3f}")
  path = os.path.join(a.out, "coord_check.png")
  figure(results, WIDTHS, a.lr, path)
  print(f"figure: {path}")


if __name__ == "__main__":
  main()
