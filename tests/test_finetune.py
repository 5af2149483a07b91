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
  c = config.finetune_default("nano")
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
  def key(path):  # list indices: int here, str on disk
    return jax.tree_util.keystr(path).replace("'", "")
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


def ladder_config(pretrain_steps=600, finetune_steps=300):
  """Two members (d32 L1, d64 L2); every member pretrained on the same tokens, then fine-tuned from its
  checkpoint and from scratch. Seeds are fixed, so the numbers are reproducible on one machine."""
  s = ladders.defaults()
  s.name = "ft_test"
  s.sizes = (1.5e4, "nano")  # d32 L1 (from a parameter target) and d64 L2 (by name)
  s.tokens, s.tokens_per_param = pretrain_steps * 32 * SEQ, 0.0
  s.rule.lr, s.rule.lr_exponent = 6e-3, 0.0
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=SEQ, batch_size=32))
  s.overrides.model = ml_collections.ConfigDict(dict(max_len=SEQ))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=20, log_every=50))
  s.overrides.mesh = ml_collections.ConfigDict(dict(data=1, num_devices=1))
  s.finetune = downstream.defaults()
  s.finetune.lr_ratio = 0.5
  s.finetune.test_batches = 40
  s.finetune.overrides.data = ml_collections.ConfigDict(dict(seq_len=SEQ))
  s.finetune.overrides.train = ml_collections.ConfigDict(dict(steps=finetune_steps, eval_batches=100,
                                                               log_every=50))
  return s


@pytest.fixture(scope="module")
def ladder(tmp_path_factory, data_dir):
  d = str(tmp_path_factory.mktemp("ft_ladder"))
  return d, downstream.run_sweep(ladder_config(), d, progress=False)


@pytest.mark.slow  # the downstream ladder: 2 pretrainings + 4 fine-tunes, ~3.5 min of make test's 2 cores
def test_downstream_sweep_records_both_stages(ladder):
  d, df = ladder
  assert (df["status"] == "completed").all(), df[["run_id", "status"]]
  pre, ft = df[df["stage"] == "pretrain"], df[df["stage"] == "finetune"]
  assert len(pre) == 2 and len(ft) == 4
  assert sorted(ft["init"]) == ["pretrained", "pretrained", "scratch", "scratch"]
  for row in ft.to_dict("records"):  # each fine-tune row carries its pretraining run's numbers
    p = pre[pre["run_id"] == row["pretrain_run"]].iloc[0]
    assert row["pretrain_eval_loss"] == pytest.approx(p["eval_loss"])
    assert row["pretrain_params_nonembed"] == p["params_nonembed"]
    d_model = io.read_json(os.path.join(d, "runs", p["run_id"], "config.json"))["model"]["d_model"]
    assert row["params_nonembed"] == p["params_nonembed"] + 16 * d_model + 16  # + the head (16 classes)
    assert 0 <= row["test_balanced_accuracy"] <= 1 and row["test_examples"] == 40 * 32
  cfg = io.read_json(os.path.join(d, "finetune", "runs", ft["run_id"].iloc[0], "config.json"))
  assert cfg["train"]["lr"] == pytest.approx(3e-3)  # lr_ratio x the member's pretraining lr
  # `scaling fit/plot SWEEP_DIR` still see only the pretraining ladder.
  from scaling.sweep import results
  assert len(results.load(d)) == 2
  # The figure: downstream vs params and vs pretraining loss.
  path = downstream.plot(d)
  assert path == os.path.join(d, "figures", "downstream.png")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  t = downstream.table(df)
  assert list(t["pretrain_params_nonembed"]) == sorted(pre["params_nonembed"])


@pytest.mark.slow  # the downstream ladder: 2 pretrainings + 4 fine-tunes, ~3.5 min of make test's 2 cores
def test_pretrained_beats_scratch(ladder):
  """The d64 member (pretrained 600 steps, eval loss ~2.05 nats/byte) fine-tuned for 300 steps classifies
  better than the same architecture fine-tuned from scratch, in balanced accuracy on the validation and
  test splits (measured before writing the test: 0.138 / 0.135 vs 0.116 / 0.122; 16 classes, chance
  0.0625). Not a machine-tuned margin: re-measured 2026-12-02 (AMD EPYC) 0.139 / 0.132 vs 0.113 / 0.120,
  and both fine-tunes redone on a 2-device mesh (same data and init, another gradient summation order)
  moved each balanced accuracy by < 0.001 although their validation losses moved by 0.014 and 0.074;
  the closest margin, the test split's 0.011, is ten times that. Loss is not compared: module_cls holds out whole
  files, so validation's class mix differs from train's and every fine-tune's validation cross-entropy sits
  near ln 16 = 2.77 (2.75-2.92 along training, either init); which init came out lower flipped with
  float-level changes to the model code."""
  d, df = ladder
  ft = df[(df["stage"] == "finetune") & df["run_id"].str.contains("d64")].set_index("init")
  val = {init: finetune.evaluate(os.path.join(d, "finetune", "runs", ft.loc[init, "run_id"]), "validation",
                                 max_batches=100)["balanced_accuracy"] for init in ("pretrained", "scratch")}
  test = ft["test_balanced_accuracy"]
  assert val["pretrained"] > val["scratch"] and test["pretrained"] > test["scratch"], (val, dict(test))
  assert (val["pretrained"] + test["pretrained"]) - (val["scratch"] + test["scratch"]) > 0.02, (val, dict(test))


@pytest.mark.slow  # the downstream ladder: 2 pretrainings + 4 fine-tunes, ~3.5 min of make test's 2 cores
def test_relaunch_trains_nothing(ladder):
  d, df = ladder
  stamps = {r: os.path.getmtime(os.path.join(d, "finetune", "runs", r, "result.json"))
            for r in df[df["stage"] == "finetune"]["run_id"]}
  again = downstream.run_sweep(ladder_config(), d, progress=False)
  assert sorted(again["run_id"]) == sorted(df["run_id"])
  assert stamps == {r: os.path.getmtime(os.path.join(d, "finetune", "runs", r, "result.json")) for r in stamps}


def test_downstream_config_errors():
  s = ladder_config()
  s.finetune.seeds = ()
  with pytest.raises(ValueError, match="finetune.seeds"):
    downstream.run_sweep(s, "/nonexistent")
  s = ladder_config()
  s.family = "dnn"
  with pytest.raises(ValueError, match="family: 'dnn' not allowed with a finetune section"):
    downstream.run_sweep(s, "/nonexistent")


def test_classification_head_accounting_is_exact():
  from flax import nnx
  from scaling.models import accounting, sizes
  for m in (sizes.gpt_model(64, 2, vocab_size=259, num_classes=16),
            sizes.gpt_model(96, 3, vocab_size=259, num_classes=5, pos="rope", tie_embeddings=False)):
    model = nnx.eval_shape(lambda: models.build("gpt", m))
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    p = accounting.params("gpt", m)
    assert p["total"] == n
    base = accounting.params("gpt", sizes.gpt_model(m.d_model, m.n_layers, vocab_size=259, pos=m.pos,
                                                    tie_embeddings=m.tie_embeddings))
    assert p["nonembed"] - base["nonembed"] == m.d_model * m.num_classes + m.num_classes
