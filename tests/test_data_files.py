"""`data.name='files:GLOB'`: parquet / jsonl / jsonl.gz shards the test writes are one corpus whose
batches tile the data like the built-in corpora, that splits held-out data by shard or by fraction,
resumes exactly after SIGKILL, and names the field in one line when a shard or the glob is wrong."""

import collections
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ml_collections import ConfigDict

from scaling.data import pipeline, tokenizer
from test_data_pipeline import _window_tokens

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _docs(seed: int, n: int) -> list[str]:
  rng = np.random.default_rng(seed)
  words = ["alpha", "beta", "gamma", "δέλτα", "epsilon", "zeta"]
  return [f"doc {seed}.{i}: " + " ".join(rng.choice(words, int(rng.integers(20, 120)))) for i in range(n)]


def _write(path, docs: list, field: str = "text") -> None:
  """One shard: .parquet (pyarrow, with an extra column), .jsonl or .jsonl.gz."""
  path = str(path)
  if path.endswith(".parquet"):
    pq.write_table(pa.table({"id": list(range(len(docs))), field: docs}), path, row_group_size=7)
    return
  lines = "".join(json.dumps({"id": i, field: d}) + "\n" for i, d in enumerate(docs))
  if path.endswith(".gz"):
    with gzip.open(path, "wt", encoding="utf-8") as f:
      f.write(lines)
  else:
    with open(path, "w", encoding="utf-8") as f:
      f.write(lines)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
  """4 shards of three kinds (< 10: held out by document fraction); blank and null rows are dropped."""
  d = tmp_path_factory.mktemp("shards")
  docs = {"a.parquet": _docs(0, 30) + [None, ""], "b.parquet": _docs(1, 25), "c.jsonl": _docs(2, 30) + ["  "],
          "sub/d.jsonl.gz": _docs(3, 20)}
  (d / "sub").mkdir()
  for name, ds in docs.items():
    _write(d / name, ds)
  (d / "README.md").write_text("not a shard")
  return str(d), {k: [x for x in v if x and x.strip()] for k, v in docs.items()}


def _cfg(pattern: str, **kw) -> ConfigDict:
  return ConfigDict({"name": f"files:{pattern}", "task": "lm", "seq_len": 32, "batch_size": 8, **kw})


def _glob(d: str) -> str:
  return os.path.join(d, "**", "*[tlz]")  # .parquet, .jsonl, .jsonl.gz (recursive), not README.md


def _split_docs(cfg) -> dict[str, list[str]]:
  src = pipeline._source(pipeline.spec_of(cfg))
  return {s: [r["text"].decode() for r in src.split(s)] for s in ("train", "validation", "test")}


def _batches(cfg, seed=0, pi=0, pc=1) -> list[dict]:
  return list(pipeline.make_loader(cfg, split="train", seed=seed, shuffle=True, num_epochs=1, process_index=pi,
                                   process_count=pc))


def test_every_document_once_and_batches_tile_the_stream(data_dir, mixed):
  d, docs = mixed
  cfg = _cfg(_glob(d))
  info = pipeline.dataset_info(cfg)
  assert info["metadata"]["num_shards"] == 4 and "0.1 of the documents" in info["metadata"]["split_rule"]
  parts = _split_docs(cfg)
  everything = sum(docs.values(), [])
  assert collections.Counter(sum(parts.values(), [])) == collections.Counter(everything)
  assert all(parts[s] for s in parts) and len(parts["train"]) > 0.6 * len(everything)
  # The token stream is the train documents in shard order, each followed by EOS.
  stream = pipeline.load_tokens(cfg, "train")
  want = [x for x in everything if x in set(parts["train"])]
  assert bytes(np.where(stream == tokenizer.BYTE_EOS, 0, stream).astype(np.uint8)) == b"".join(
      x.encode() + b"\0" for x in want)
  # In memory and streamed: one epoch's windows hold every token of the stream once, and two
  # processes' shards together are the one-process epoch.
  for streamed in (False, True):
    c = _cfg(_glob(d), streaming=streamed)
    batches = _batches(c, seed=3)
    assert all(b["inputs"].shape == (8, 32) for b in batches)
    if streamed:
      assert _window_tokens(batches) == collections.Counter(stream.tolist())
    else:  # Windows of seq_len + 1 tokens sharing their last one: the stream minus its last token.
      inputs = collections.Counter(t for b in batches for x, w in zip(b["inputs"], b["weights"])
                                   for t in x[:int(w.sum())].tolist())
      assert inputs == collections.Counter(stream[:-1].tolist())
    halves = [_batches(c, seed=3, pi=i, pc=2) for i in (0, 1)]
    assert _window_tokens(halves[0]) + _window_tokens(halves[1]) == _window_tokens(batches)


def test_holdout_by_shard_and_by_fraction(data_dir, tmp_path):
  for i in range(12):  # >= 10 shards: 'auto' holds out whole shards.
    _write(tmp_path / f"part-{i:02d}.jsonl", _docs(10 + i, 12))
  auto = _split_docs(_cfg(str(tmp_path / "*.jsonl")))
  shard_of = {x: i for i in range(12) for x in _docs(10 + i, 12)}
  split_shards = {s: {shard_of[x] for x in v} for s, v in auto.items()}
  assert all(split_shards.values()) and sum(len(v) for v in split_shards.values()) == 12  # disjoint, all
  assert pipeline.dataset_info(_cfg(str(tmp_path / "*.jsonl")))["metadata"]["split_rule"] == "by shard"
  frac = _split_docs(_cfg(str(tmp_path / "*.jsonl"), holdout="0.25"))  # As the CLI passes it.
  n = sum(len(v) for v in frac.values())
  assert n == 144 and 0.1 < len(frac["test"]) / n < 0.4 and 0.1 < len(frac["validation"]) / n < 0.4
  assert len({shard_of[x] for x in frac["test"]}) > 3  # Documents from many shards.


def _cfg_dict(pattern: str, streamed: bool) -> dict:
  return {"name": f"files:{pattern}", "task": "lm", "seq_len": 16, "batch_size": 4, "streaming": streamed}


CHILD = textwrap.dedent("""
  import json, os, sys, signal
  from scaling import io
  from scaling.data import pipeline
  from test_data_files import _digest
  cfg, out, total, kill_at = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
  it = iter(pipeline.make_loader(cfg, split="train", seed=11, shuffle=True, num_epochs=None,
                                 process_index=0, process_count=1))
  seen = []
  if os.path.exists(out):
    saved = io.read_json(out)
    it.set_state(saved["state"])
    seen = saved["digests"]
  while len(seen) < total:
    b = next(it)
    seen.append(_digest(b))
    io.atomic_write_json(out, {"state": it.get_state(), "digests": seen})
    if len(seen) == kill_at:  # Injected fault point: one more batch in flight, then wait to be killed.
      next(it)
      open(out + ".ready", "w").close()
      signal.pause()
""")


def _digest(b: dict) -> str:
  return hashlib.sha256(b"".join(b[k].tobytes() for k in sorted(b))).hexdigest()


def _child(cfg: dict, out, total: int, kill_at: int) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]))
  return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(out), str(total), str(kill_at)],
                          cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_streamed_loader_resumes_exactly_after_sigkill(data_dir, tmp_path):
  """The streamed path (splits > 1 GiB; training below covers the in-memory one): a reader SIGKILLed
  mid-epoch and relaunched from its saved grain state yields the batches that one never killed yields,
  across the epoch boundary."""
  _write(tmp_path / "s0.jsonl", _docs(40, 15))
  _write(tmp_path / "s1.parquet", _docs(41, 15))
  cfg = _cfg_dict(str(tmp_path / "s*"), True)
  per_epoch = len(_batches(ConfigDict(cfg)))
  total = 2 * per_epoch + 3
  it = iter(pipeline.make_loader(ConfigDict(cfg), split="train", seed=11, shuffle=True, num_epochs=None,
                                 process_index=0, process_count=1))
  ref = [_digest(next(it)) for _ in range(total)]
  killed = tmp_path / "killed.json"
  p = _child(cfg, killed, total, per_epoch - 2)
  deadline = time.time() + 300
  while p.poll() is None and not os.path.exists(str(killed) + ".ready") and time.time() < deadline:
    time.sleep(0.02)  # Polls for the child's marker; the kill point itself is the injected hook.
  assert p.poll() is None, p.stderr.read()
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert len(json.load(open(killed))["digests"]) == per_epoch - 2
  again = _child(cfg, killed, total, -1)
  assert again.wait(timeout=300) == 0, again.stderr.read()
  assert json.load(open(killed))["digests"] == ref


def _err(cfg: dict) -> str:
  with pytest.raises(ValueError) as e:
    pipeline.dataset_info(ConfigDict(cfg))
  msg = str(e.value)
  assert "\n" not in msg and "; allowed: " in msg
  return msg


def test_bad_shards_give_one_line_errors_and_leave_nothing_behind(data_dir, tmp_path):
  assert _err(_cfg(str(tmp_path / "nothing-*.parquet"))).startswith("data.name: 'files:")
  _write(tmp_path / "ok.parquet", _docs(5, 10), field="content")
  msg = _err(_cfg(str(tmp_path / "ok.parquet")))
  assert msg.startswith("data.text_field: 'text' is not a column") and "['content', 'id']" in msg
  assert len(_split_docs(_cfg(str(tmp_path / "ok.parquet"), text_field="content"))["train"]) > 5
  _write(tmp_path / "x.jsonl", _docs(6, 5))
  (tmp_path / "y.jsonl.gz").write_bytes(b"this is not gzip")
  msg = _err(_cfg(str(tmp_path / "*.jsonl*")))
  assert msg.startswith("data.name: shard") and "y.jsonl.gz" in msg and "unreadable" in msg
  (tmp_path / "z.parquet").write_bytes(b"PAR1 truncated")
  assert "z.parquet" in _err(_cfg(str(tmp_path / "z.parquet")))
  bad_line = tmp_path / "late"
  bad_line.mkdir()  # The first line is fine (the pre-check passes), line 3 is not JSON: found while building.
  (bad_line / "w.jsonl").write_text('{"text": "fine"}\n{"text": "also"}\n{"text": broken\n')
  data = tmp_path / "tfds"
  msg = _err({**_cfg(str(bad_line / "*.jsonl")).to_dict(), "data_dir": str(data)})
  assert "w.jsonl" in msg and "unreadable" in msg
  assert not [f for _, _, fs in os.walk(data) for f in fs if not f.startswith(".")]  # Nothing half-built.
  assert "data.holdout" in _err(_cfg(str(tmp_path / "ok.parquet"), holdout="shard"))
  assert "data.holdout" in _err(_cfg(str(tmp_path / "ok.parquet"), holdout=0.7))
  assert "data.holdout" in _err(_cfg(str(tmp_path / "ok.parquet"), holdout="most"))


@pytest.mark.slow  # ~1-2 min; the loader's own SIGKILL test and test_train's kill chain cover make test
def test_training_on_shards_killed_and_relaunched_is_bitwise_exact(data_dir, tmp_path):
  """test_train's SIGKILL test on a parquet + jsonl.gz corpus: the data iterator's state travels in the
  checkpoint, so the relaunched run ends on the parameters of a run never interrupted."""
  import jax
  from scaling import io
  from scaling.train import loop
  from test_train import _env, _train_cmd, params_of, tiny
  _write(tmp_path / "a.parquet", _docs(50, 40))
  _write(tmp_path / "b.jsonl.gz", _docs(51, 40))
  name = f"files:{tmp_path / '*.*'}"
  ref = loop.train(tiny(steps=14, train__checkpoint_every=2, data__name=name), str(tmp_path / "ref"))
  assert ref["status"] == "completed"
  wd = tmp_path / "killed"
  cmd = _train_cmd(wd, [f"--config.data.name={name}"])
  p = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and p.poll() is None:
    rows = io.read_jsonl(str(wd / "metrics.jsonl"))
    if rows and rows[-1].get("step", 0) >= 7:
      break
    time.sleep(0.02)  # Polls the run's own log for the kill point, as test_train does.
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert not (wd / "result.json").exists(), "the run finished before the kill"
  out = subprocess.run(cmd, cwd=REPO, env=_env(), check=True, capture_output=True, text=True)
  assert "resumed" in out.stdout
  step, params = params_of(str(wd))
  assert step == 14
  jax.tree.map(np.testing.assert_array_equal, params, params_of(str(tmp_path / "ref"))[1])
