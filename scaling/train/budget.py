"""A run's budget: train.steps / train.tokens / train.flops -> steps, tokens and FLOPs, from the config alone.

One source of shapes (the dataset's metadata, no batch read): the loop, the sweep planner and cooldown
branches all call `plan(c)`, so a branch's trunk and its branches agree on steps by construction.
"""

import math

import ml_collections

from scaling import config as config_lib
from scaling.data import pipeline
from scaling.models import accounting


def shapes(c: ml_collections.ConfigDict) -> dict:
  """Batch shapes of a finalized config, as the loader will produce them."""
  b, task = c.data.batch_size, c.data.get("task", "lm")
  if task == "classify":
    return {"x": (b, c.model.num_features), "label": (b,)}
  if task in config_lib.SEQ2SEQ_TASKS:
    info = pipeline.dataset_info(c.data)
    return {"inputs": (b, info["inputs_len"]), "targets": (b, info["targets_len"])}
  return {"inputs": (b, c.data.seq_len)}


def tokens_per_example(c: ml_collections.ConfigDict, shapes: dict) -> int:
  """Tokens a training example contributes: sequence length (LM), encoder + decoder lengths (span, prefix LM),
  1 example (classification: the budget is counted in examples)."""
  task = c.data.get("task", "lm")
  if task in config_lib.SEQ2SEQ_TASKS:
    return shapes["inputs"][1] + shapes["targets"][1]
  if task == "classify":
    return 1
  return shapes["inputs"][1]


def flops_per_example(c: ml_collections.ConfigDict, shapes: dict) -> float:
  if c.data.get("task", "lm") in config_lib.SEQ2SEQ_TASKS:
    return accounting.train_flops(c.family, c.model, shapes["inputs"][1], shapes["targets"][1])
  return accounting.train_flops(c.family, c.model, shapes["inputs"][1] if "inputs" in shapes else 1)


def plan(c: ml_collections.ConfigDict) -> dict:
  """Steps, tokens and FLOPs of a finalized neural config's run."""
  s = shapes(c)
  b = c.data.batch_size
  tok_step = tokens_per_example(c, s) * b
  flops_step = flops_per_example(c, s) * b
  t = c.train
  if t.flops:
    steps = max(1, round(t.flops / flops_step))
  elif t.tokens:
    steps = max(1, math.ceil(t.tokens / tok_step))
  else:
    steps = t.steps
  p = accounting.params(c.family, c.model)
  return {"steps": int(steps), "tokens_per_step": tok_step, "flops_per_step": flops_step,
          "tokens": int(steps * tok_step), "flops": float(steps * flops_step), "params": p}
