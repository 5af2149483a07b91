"""Fine-tuning from a pretrained run: what is loaded, config errors, pretrained beats scratch, the
pretrain-ladder -> fine-tune sweep and its downstream figure."""

import os

import jax
import ml_collections
import numpy as np
import pytest

from scaling import config, io, models, parallel
from scaling.sweep import downstream, ladders
from scaling.train import checkpoint, finetune, loop, optim
from scaling.train import step as step_lib

SEQ = 64


def pretrain_config(d_model=32, n_layers=1, steps=10):
  c = config.base("gpt", "nano")
  c.model.update(d_model=d_model, n_layers=n_layers, n_heads=max(1, d_model // 32), d_ff=4 * d_model,
                 max_len=SEQ)
  c.data.update(seq_len=SEQ, batch_size=32)
  c.train.update(steps=steps, lr=3e-3, warmup_steps=2, eval_batches=4, log_every=10, progress=False)
  c.mesh.update(data=1, num_devices=1)
  return c


def finetune_config(init_from="", steps=10, **model):
  c = finetune.default_config("nano")
  c.init_from = init_from
  c.data.update(seq_len=SEQ, batch_size=32)
  c.train.update(steps=steps, eval_batches=4, log_every=10, progress=False)
  c.model.update(model)
  return c


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, data_dir):
  d = str(tmp_path_factory.mktemp("pre_small"))
  assert loop.train(pretrain_config(), d)["status"] == "completed"
  return d


def test_load_pretrained_copies_body_keeps_fresh_head_and_optimizer(small_run):
  c = loop.prepare(finetune_config(small_run))
  assert (c.model.d_model, c.model.n_layers, c.model.num_classes) == (32, 1, 16)  # inherited + head
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(data=4, fsdp=2, tensor=1)))  # not the saved mesh
  tx, _ = optim.make(c.train, 10)
  _, state, shardings = step_lib.init_state("gpt", c.model, c.seed, tx, mesh, models.build)
  fresh = jax.tree.map(np.asarray, state["params"])
  loaded = finetune.load_pretrained(c, state, shardings)
  ck = checkpoint.Checkpointer(small_run)
  saved = ck.manager.restore(max(ck.manager.all_steps()))["params"]
  ck.close()
  key = lambda path: jax.tree_util.keystr(path).replace("'", "")  # list indices: int here, str on disk
  unused = {key(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(saved)[0]}
  for (path, v), f, sh in zip(jax.tree_util.tree_flatten_with_path(loaded["params"])[0], jax.tree.leaves(fresh),
                              jax.tree.leaves(shardings["params"])):
    assert v.sharding.is_equivalent_to(sh, v.ndim)  # restored straight onto the new mesh
    if "cls_" in key(path):  # the new head keeps exactly its fresh initialization
      np.testing.assert_array_equal(v, f)
    else:
      np.testing.assert_array_equal(v, unused.pop(key(path)))
  assert not unused  # every pretrained tensor was used
  assert int(loaded["step"]) == 0
  assert all(float(np.abs(x).max()) == 0 for x in jax.tree.leaves(loaded["opt_state"]) if np.ndim(x) > 0)


def test_finetune_config_errors(small_run, tmp_path):
  with pytest.raises(ValueError, match="init_from: .*no config.json"):
    loop.prepare(finetune_config(str(tmp_path)))
  empty = tmp_path / "no_ckpt"
  io.atomic_write_json(str(empty / "config.json"), io.read_json(os.path.join(small_run, "config.json")))
  with pytest.raises(ValueError, match="init_from: .*no checkpoint"):
    loop.train(finetune_config(str(empty), steps=1), str(tmp_path / "ft"))
  c = finetune_config(small_run)
  c.family = "transformer"
  with pytest.raises(ValueError, match="init_from: .*'gpt' model"):
    loop.prepare(c)
  c = pretrain_config()
  c.data.task = "module_cls"
  c.family, c.model = "dnn", config.base("dnn", "nano").model
  with pytest.raises(ValueError, match="data.task: 'module_cls'"):
    loop.prepare(c)


def test_evaluate_agrees_with_the_loop(small_run, tmp_path):
  c = finetune_config(small_run, steps=4)
  c.train.eval_batches = 20  # the loop and evaluate() read the same fixed order of the split
  c.mesh.update(data=1, num_devices=1)
  r = loop.train(c, str(tmp_path))
  ev = finetune.evaluate(str(tmp_path), "validation", max_batches=20)
  assert ev["accuracy"] == pytest.approx(r["eval_accuracy"], abs=1e-6)
  assert ev["loss"] == pytest.approx(r["eval_loss"], rel=1e-5)
  conf = np.array(ev["confusion"])
  assert conf.sum() == ev["examples"] == 20 * 32
  present = conf.sum(1) > 0
  assert ev["balanced_accuracy"] == pytest.approx(np.mean(np.diag(conf)[present] / conf.sum(1)[present]))
