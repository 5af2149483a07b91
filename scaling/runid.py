"""What a run computes: the rules that say two configs are the same run (jax-free, below train and sweep).

A relaunch, a reused run and a cooldown branch's trunk check are all `config_diff(old, new) == []`: the
fields that change what a run computes, with the defaults of fields added after runs existed filled in.
`scaling status` reads sweeps through this module without importing jax.
"""

import json

from scaling import io

# Fields that do not change what a run computes: a relaunch may differ in them without conflict.
IGNORED = {"tags", "train.progress", "train.log_every", "train.eval_every", "train.curve_points", "train.checkpoint_every",
           "train.keep_checkpoints", "train.peak_flops", "data.data_dir", "mesh"}
# data.name='files:GLOB' options (scaling/data/files.py), in every config so the CLI can override them.
FILES_DEFAULTS = {"text_field": "text", "holdout": "auto"}
# Fields added after runs existed, with the value a config.json without them means.
ADDED_DEFAULTS = {**{f"data.{k}": v for k, v in FILES_DEFAULTS.items()}, "data.unique_tokens": 0,
                  "train.decay_shape": "linear", "train.branch_from": "", "train.branch_step": 0,
                  "train.checkpoint_steps": [], "model.scan_layers": False, "model.remat": "none",
                  "model.parametrization": "sp", "model.base_width": 0, "model.base_head_dim": 0,
                  "model.attention": "auto",
                  # the GPT recipe fields (scaling/models/accounting.py RECIPE_DEFAULTS: the GPT-2 recipe)
                  "model.norm": "layernorm", "model.mlp": "gelu", "model.qk_norm": False, "model.bias": True,
                  "family_file": ""}  # a built-in family (scaling/models/registry.py)


def plain(cfg) -> dict:
  d = cfg.to_dict() if hasattr(cfg, "to_dict") else cfg
  return json.loads(json.dumps(d, default=io._default))  # tuples -> lists, numpy -> python


def _flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if any(key == i or key.startswith(i + ".") for i in IGNORED):
      continue
    if isinstance(v, dict):
      out.update(_flat(v, key + "."))
    else:
      out[key] = v
  return out


def _computed(cfg) -> dict:
  """The flat fields of a config that change what its run computes (defaults added for older configs)."""
  return {**ADDED_DEFAULTS, **_flat(plain(cfg))}


def config_diff(old: dict, new: dict) -> list[str]:
  """'field: old -> new' for every field that changes what the run computes."""
  a, b = _computed(old), _computed(new)
  return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def config_key(cfg) -> str:
  """Equal for two configs when config_diff finds nothing between them (a hashable stand-in for it)."""
  return json.dumps(_computed(cfg), sort_keys=True, default=str)
