"""Model families by name: each family module builds one `Family` and `register`s it; everything else asks
`get(name)` instead of testing the name. A researcher's own family lives in their own file, imported by
`load_file` (config field `family_file`) in every process before the family is looked up.
"""

import dataclasses
import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable

import ml_collections
from flax import nnx

from scaling import errors

# Not neural families: sklearn estimators and n-gram counts (scaling/baselines), no parameters or FLOPs.
BASELINES = ("svm", "tree", "forest", "logreg", "ngram")


@dataclasses.dataclass(frozen=True)
class Family:
  name: str
  module: type  # an nnx.Module class: module(model_cfg, rngs=nnx.Rngs) -> tokens in, logits out
  sizes: dict[str, Callable[[], ml_collections.ConfigDict]]  # size name -> its default model config
  from_params: Callable[..., ml_collections.ConfigDict]  # (target_nonembed, **model fields) -> model config
  params: Callable[[ml_collections.ConfigDict], dict]  # -> {'total', 'embed', 'nonembed'}
  tag: Callable[[ml_collections.ConfigDict], str]  # run-id part naming the shape, e.g. 'd64-L2'
  width_field: str = "d_model"  # the width μP and the lr rule scale with
  # Forward FLOPs per example (model_cfg, seq_len, dec_len=None); None: XLA's cost analysis of the forward.
  forward_flops: Callable[..., float] | None = None
  tasks: tuple[str, ...] = ("lm",)  # data.task values it trains on; the first is the default
  validate: Callable[[ml_collections.ConfigDict], None] | None = None  # model fields; ConfigError naming one
  # (run config, dataset info) -> None: fills data-derived model fields (vocabulary, max_len) in place.
  finalize: Callable[[ml_collections.ConfigDict, dict], None] | None = None
  scan_layers: bool = False  # model.scan_layers / model.remat apply (checkpoint layout matters on resume)
  mup: bool = False  # μP fields (parametrization, base_width) apply
  seq_input: bool = True  # consumes a token sequence (seq_len, max_len); False: a fixed-size input
  for_task: Callable[[ml_collections.ConfigDict, str], None] | None = None  # (model cfg, task): task fields
  check_task: Callable[[ml_collections.ConfigDict, str], None] | None = None  # (run cfg, task) -> ConfigError
  uses_vocab: Callable[[ml_collections.ConfigDict], bool] = lambda m: True  # model.vocab_size from the data
  # Bytes backward keeps per example (model cfg, batch shapes, tensor-parallel ways, activation bytes);
  # None: not estimated (the memory rule then counts parameters and optimizer state only).
  activations: Callable[..., float] | None = None

  def named(self, size: str) -> ml_collections.ConfigDict:
    if size not in self.sizes:
      raise errors.ConfigError(f"size: unknown {size!r} for {self.name}; allowed: {', '.join(self.sizes)}")
    return self.sizes[size]()

  def width(self, m: ml_collections.ConfigDict) -> int:
    return m[self.width_field]

  def build(self, m: ml_collections.ConfigDict, rngs: nnx.Rngs) -> nnx.Module:
    return self.module(m, rngs=rngs)


_FAMILIES: dict[str, Family] = {}
_LOADED: set[str] = set()


def register(family: Family) -> Family:
  """Adds `family` (re-registering a name replaces it: re-importing a user's file after an edit)."""
  if family.name in BASELINES:
    raise errors.ConfigError(f"family: {family.name!r} is a baseline's name; allowed: any other name")
  _FAMILIES[family.name] = family
  return family


def names() -> tuple[str, ...]:
  return tuple(_FAMILIES)


def is_neural(name: str) -> bool:
  return name in _FAMILIES


def get(name: str) -> Family:
  if name not in _FAMILIES:
    raise errors.ConfigError(f"family: unknown {name!r}; allowed: {', '.join(names() + BASELINES)}")
  return _FAMILIES[name]


def load_file(path: str) -> None:
  """Imports a family file once per process (it calls `register`). ConfigError naming `family_file`."""
  if not path:
    return
  full = os.path.abspath(os.path.expanduser(path))
  if full in _LOADED:
    return
  if not os.path.isfile(full) or not full.endswith(".py"):
    raise errors.ConfigError(f"family_file: {path!r} is not a Python file; allowed: a path to a .py file that "
                     "calls scaling.models.registry.register")
  name = "scaling_family_" + hashlib.sha1(full.encode()).hexdigest()[:8]
  spec = importlib.util.spec_from_file_location(name, full)
  mod = importlib.util.module_from_spec(spec)
  sys.modules[name] = mod  # dataclasses and pickling look the module up by name
  spec.loader.exec_module(mod)
  _LOADED.add(full)


def load(c: ml_collections.ConfigDict) -> None:
  """Imports the run (or sweep) config's `family_file`, if any."""
  load_file(c.get("family_file", ""))


def is_neural_config(c) -> bool:
  """A run config (ConfigDict or its dict) of a registered family, its `family_file` imported first."""
  load(c)
  return is_neural(c.get("family"))
