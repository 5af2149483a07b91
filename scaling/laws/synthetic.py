"""A sweep directory whose losses follow a known law: checks the fit/plot pipeline end to end.

`write_sweep(dir)` writes runs/<id>/{config.json, metrics.jsonl, result.json} as the training loop
and the baselines do, with:
  gpt      an IsoFLOP grid (tags.budget), L = E + A/N^alpha + B/D^beta (N non-embedding params,
           D tokens, FLOPs = tokens x 6.6 N), training curves, one diverged and one failed run
  dnn      a parameter ladder at a fixed number of examples
  logreg, tree   learning curves in training-set size (train_examples)
Noise is log-normal with `noise` standard deviation. Returns the truth it used.
"""

import json
import os

import numpy as np

from scaling import io

GPT_LAW = dict(E=1.0, A=25.0, B=40.0, alpha=0.3, beta=0.3)  # byte-level-sized losses at 1e5..1e7 params
FLOPS_PER_PARAM_TOKEN = 6.6  # 6 N plus attention, roughly


def chinchilla_loss(N, D, E, A, B, alpha, beta):
  return E + A / np.asarray(N, float) ** alpha + B / np.asarray(D, float) ** beta


def _write_run(sweep_dir, run_id, config, result, rows):
  d = os.path.join(sweep_dir, "runs", run_id)
  os.makedirs(d, exist_ok=True)
  io.atomic_write_json(os.path.join(d, "config.json"), config)
  io.atomic_write_text(os.path.join(d, "metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in rows))
  if result is not None:
    io.atomic_write_json(os.path.join(d, "result.json"), result)


def write_sweep(sweep_dir: str, *, budgets=(1e13, 3e13, 1e14, 3e14), sizes_per_budget: int = 6,
                spread: float = 4.0, law: dict | None = None, noise: float = 0.01, seed: int = 0) -> dict:
  law = dict(GPT_LAW if law is None else law)
  rng = np.random.default_rng(seed)
  jitter = lambda: float(np.exp(noise * rng.standard_normal()))
  io.atomic_write_json(os.path.join(sweep_dir, "sweep.json"), {"name": "synthetic", "kind": "isoflop"})
  embed = 256 * 64  # byte vocabulary x d_model: counted in params, not in N

  # Centre each IsoFLOP grid on the law's own optimum (C = 6.6 N D), as a well-run sweep would.
  a, b, al, be = law["A"], law["B"], law["alpha"], law["beta"]
  G = (al * a / (be * b)) ** (1 / (al + be))
  for C in budgets:
    n_star = G * (C / FLOPS_PER_PARAM_TOKEN) ** (be / (al + be))
    for N in np.round(n_star * np.geomspace(1 / spread, spread, sizes_per_budget)):
      fpt = FLOPS_PER_PARAM_TOKEN * N
      D = C / fpt
      steps = 200
      run_id = f"gpt-N{N:.2e}-C{C:.1e}-s0"
      rows = []
      for s in np.linspace(steps / 20, steps, 20).astype(int):
        t = D * s / steps
        # Before the end of its schedule a run sits a little above the law at the same tokens.
        ell = chinchilla_loss(N, t, **law) * (1 + 0.02 * (1 - s / steps)) * jitter()
        rows.append({"step": int(s), "tokens": float(t), "train_loss": ell * 0.99})
        if s % 50 == 0 and s < steps:  # the final eval is the row below
          rows.append({"step": int(s), "tokens": float(t), "eval_loss": ell})
      final = chinchilla_loss(N, D, **law) * jitter()
      rows.append({"step": steps, "tokens": float(D), "eval_loss": final})
      tags = {"sweep": "synthetic", "ladder": "isoflop", "budget": C}
      result = dict(status="completed", family="gpt", size=f"{N:.2e}", seed=0, tags=tags, params=N + embed,
                    params_embed=embed, params_nonembed=N, tokens=D, flops=C, train_loss=final * 0.99,
                    eval_loss=final, steps=steps, wall_time_s=0.1 * steps)
      _write_run(sweep_dir, run_id, {"family": "gpt", "size": f"{N:.2e}", "seed": 0, "tags": tags}, result, rows)

  # Runs that must not reach a fit: diverged (NaN loss), failed, and one still running (no result).
  tags = {"sweep": "synthetic", "ladder": "isoflop", "budget": budgets[-1]}
  for run_id, extra in (("gpt-diverged", dict(status="diverged", eval_loss=float("nan"), train_loss=float("nan"))),
                        ("gpt-failed", dict(status="failed", error="RuntimeError: out of memory"))):
    _write_run(sweep_dir, run_id, {"family": "gpt", "size": "big", "tags": tags},
               dict(family="gpt", size="big", tags=tags, params=4e6, params_embed=embed, params_nonembed=4e6,
                    tokens=1e6, flops=2.6e13, steps=10, wall_time_s=1.0, **extra), [])
  _write_run(sweep_dir, "gpt-running", {"family": "gpt", "size": "big", "tags": tags}, None,
             [{"step": 10, "tokens": 1e5, "train_loss": 3.0}])

  dnn = dict(E=0.05, A=8.0, alpha=0.35)
  for N in np.geomspace(2e3, 2e5, 6).round():
    loss = (dnn["E"] + dnn["A"] * N ** -dnn["alpha"]) * jitter()
    result = dict(status="completed", family="dnn", size=f"{N:.0f}", params=N, params_embed=0, params_nonembed=N,
                  tokens=1e6, flops=6 * N * 1e6, train_loss=loss * 0.9, eval_loss=loss, eval_accuracy=1 - loss / 3,
                  steps=1000, wall_time_s=5.0, tags={"sweep": "synthetic", "ladder": "params"})
    rows = [{"step": s, "tokens": s * 1e3, "train_loss": loss * (1 + 200 / s)} for s in (100, 250, 500, 1000)]
    rows.append({"step": 1000, "tokens": 1e6, "eval_loss": loss})
    _write_run(sweep_dir, f"dnn-w{N:.0f}-s0", {"family": "dnn", "size": f"{N:.0f}"}, result, rows)

  classic = {"logreg": dict(E=0.10, A=6.0, alpha=0.5), "tree": dict(E=0.25, A=12.0, alpha=0.45)}
  for fam, c in classic.items():
    for n in (100, 200, 400, 800, 1600):
      loss = (c["E"] + c["A"] * n ** -c["alpha"]) * jitter()
      params = 650 if fam == "logreg" else 2 * int(n ** 0.8)
      result = dict(status="completed", family=fam, size="default", params=params, params_embed=0,
                    params_nonembed=params, tokens=None, flops=None, train_loss=loss * 0.7, eval_loss=loss,
                    eval_accuracy=1 - loss / 3, train_examples=n, steps=0, wall_time_s=0.01)
      _write_run(sweep_dir, f"{fam}-default-n{n}-s0", {"family": fam, "size": "default"}, result, [])
  return {"gpt": law, "dnn": dnn, **classic}
