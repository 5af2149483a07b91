"""optax optimizers and learning-rate schedules from `config.train`."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from scaling import errors
from scaling.models import mup, registry

EMBEDDING_PARAMS = ("embed", "pos_embed", "enc_pos", "dec_pos")


def warmup_steps(t: ml_collections.ConfigDict, total_steps: int) -> int:
  return t.warmup_steps if t.warmup_steps >= 0 else int(t.warmup_frac * total_steps)


def decay_steps(t: ml_collections.ConfigDict, total_steps: int) -> int:
  """Length of WSD's cool-down: the last decay_frac of the run (at least one step)."""
  return max(int(t.decay_frac * total_steps), 1)


def cooldown(lr: float, lo: float, steps: int, shape: str) -> optax.Schedule:
  """lr -> lo over `steps`: linear, or 1-sqrt (lo + (lr - lo)(1 - sqrt(s / steps)), Hägele et al. 2024)."""
  if shape == "linear":
    return optax.linear_schedule(lr, lo, steps)
  if shape == "1-sqrt":
    return lambda count: lr + (lo - lr) * jnp.sqrt(jnp.clip(count / steps, 0.0, 1.0))
  raise errors.ConfigError(f"train.decay_shape: got {shape!r}; allowed: linear, 1-sqrt")


def schedule(t: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """cosine: warmup then cosine to lr*min_lr_ratio; wsd: warmup-stable-decay (cool-down of shape
  decay_shape over the last decay_frac of steps); linear: warmup then linear decay; constant: warmup then flat."""
  w = min(warmup_steps(t, total_steps), max(total_steps - 1, 0))
  lr, lo = t.lr, t.lr * t.min_lr_ratio
  warm = optax.linear_schedule(lr / max(w, 1), lr, max(w, 1))  # first step already moves
  rest = max(total_steps - w, 1)
  if t.schedule == "cosine":
    tail = optax.cosine_decay_schedule(lr, rest, alpha=t.min_lr_ratio)
  elif t.schedule == "linear":
    tail = optax.linear_schedule(lr, lo, rest)
  elif t.schedule == "wsd":
    decay = decay_steps(t, total_steps)
    tail = optax.join_schedules([optax.constant_schedule(lr), cooldown(lr, lo, decay, t.get("decay_shape", "linear"))],
                                [max(rest - decay, 0)])
  elif t.schedule == "constant":
    tail = optax.constant_schedule(lr)
  else:
    raise errors.ConfigError(f"train.schedule: unknown {t.schedule!r}; allowed: cosine, wsd, linear, constant")
  return optax.join_schedules([warm, tail], [w]) if w > 0 else tail


def decay_mask(params, t: ml_collections.ConfigDict):
  """Weight decay on matrices only: never on norms/biases; on embeddings only if train.decay_embeddings."""
  def keep(path, x):
    name = str(getattr(path[-1], "key", path[-1]))
    return x.ndim >= 2 and (t.decay_embeddings or name not in EMBEDDING_PARAMS)
  return jax.tree_util.tree_map_with_path(keep, params)


def mup_adamw(lr: optax.Schedule, t: ml_collections.ConfigDict, mask, family: str,
              model: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """optax.adamw with Adam's direction scaled per parameter role (scaling/models/mup.py, Tab. 8): the same
  chain as optax.adamw plus one multi_transform between the Adam moments and the weight decay, so decay per
  step stays width-independent (microsoft/mup's MuAdam default)."""
  labels = mup.roles(registry.get(family).module, family, model)
  by_role = {role: optax.scale(s) for role, s in mup.lr_scales(family, model).items()}
  return optax.chain(optax.scale_by_adam(b1=t.b1, b2=t.b2, eps=t.eps),
                     optax.multi_transform(by_role, lambda _: labels),
                     optax.add_decayed_weights(t.weight_decay, mask),
                     optax.scale_by_learning_rate(lr))


def make(t: ml_collections.ConfigDict, total_steps: int, family: str | None = None,
         model: ml_collections.ConfigDict | None = None) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The run's optimizer; pass the run's `family` and `model` config so μP members get their per-role lrs."""
  lr = schedule(t, total_steps)
  parts = [optax.clip_by_global_norm(t.grad_clip)] if t.grad_clip > 0 else []
  mask = lambda p: decay_mask(p, t)
  is_mup = model is not None and mup.enabled(model)
  if is_mup and t.optimizer != "adamw":
    raise errors.ConfigError(f"train.optimizer: {t.optimizer!r} with model.parametrization='mup' (its per-layer lrs "
                     "here are Adam's); allowed: adamw")
  if is_mup:
    parts.append(mup_adamw(lr, t, mask, family, model))
  elif t.optimizer == "adamw":
    parts.append(optax.adamw(lr, b1=t.b1, b2=t.b2, eps=t.eps, weight_decay=t.weight_decay, mask=mask))
  elif t.optimizer in ("sgd", "momentum"):
    if t.weight_decay:
      parts.append(optax.masked(optax.add_decayed_weights(t.weight_decay), mask))
    parts.append(optax.sgd(lr, momentum=t.momentum if t.optimizer == "momentum" else None))
  else:
    raise errors.ConfigError(f"train.optimizer: unknown {t.optimizer!r}; allowed: adamw, sgd, momentum")
  return optax.chain(*parts), lr
