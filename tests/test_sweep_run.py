"""End-to-end sweeps through `scaling sweep` (subprocesses, tiny GPTs on the embedded corpus): a ladder
completes, a SIGKILLed sweep resumes, concurrent sweeps share the work, divergence is recorded, the pool
and SLURM (submitit local) executors run the same tasks."""

import importlib.util
import os
import signal
import subprocess
import sys

import ml_collections
import pytest

from scaling import io, results, runid
from scaling.models import accounting
from scaling.sweep import results as sweep_results
from scaling.sweep import ladders, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALING = os.path.join(os.path.dirname(sys.executable), "scaling")
# d_model 32-64, 1-2 layers, 8 x 32 tokens per step: each run is ~20 steps and compiles in seconds.
CONFIG = """
import ml_collections
from scaling.sweep import ladders


def get_config(arg=""):
  s = ladders.defaults()
  s.name = "test"
  s.sizes = {sizes}
  s.seeds = {seeds}
  s.lr_multipliers = {lr_multipliers}
  s.tokens = {tokens}
  s.pack = {pack}
  s.rule.lr, s.rule.width = 3e-3, 32
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(
      eval_batches=2, log_every=5, checkpoint_every={checkpoint_every}, peak_flops=1e11))
  s.executor.kind = "{executor}"
  s.executor.lock_timeout_s = 30.0
  s.executor.poll_s = 0.5
  s.executor.compile_cache = ""
  s.executor.cpus_per_worker = {cpus_per_worker}
  s.executor.slurm.cluster = "local"
  s.executor.slurm.timeout_min = 10
  return s
"""


def write_config(path, *, sizes=(1.2e4,), seeds=(0,), lr_multipliers=(1.0,), tokens=5120, pack=1,
                 checkpoint_every=0, executor="local", cpus_per_worker=0) -> str:
  path.write_text(CONFIG.format(sizes=tuple(sizes), seeds=tuple(seeds), lr_multipliers=tuple(lr_multipliers),
                                tokens=tokens, pack=pack, checkpoint_every=checkpoint_every,
                                executor=executor, cpus_per_worker=cpus_per_worker))
  return str(path)


@pytest.fixture(scope="module")
def env(data_dir):
  """The test environment for child processes (8 fake CPU devices, the shared dataset cache) plus a
  persistent compilation cache: runs of the same shape in different processes compile once."""
  e = dict(os.environ, SCALING_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
           XLA_FLAGS=os.environ.get("XLA_FLAGS", "--xla_force_host_platform_device_count=8"),
           JAX_COMPILATION_CACHE_DIR=os.path.join(data_dir, "jax_cache_sweep_tests"),
           JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return e


def load_config(path: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location("sweep_config", path)
  m = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(m)
  return m.get_config()


def run_ids(path: str) -> list[str]:
  """The sweep's run ids, in expansion order (sizes from `sizes.from_params`, so not hard-coded)."""
  return [r for r, _ in ladders.expand(load_config(path))]


def sweep(env, config, sweep_dir, *args, check=True, **popen):
  cmd = [SCALING, "sweep", f"--config={config}", f"--sweep_dir={sweep_dir}", *args]
  if popen:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, **popen)
  p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  if check and p.returncode != 0:
    raise AssertionError(f"scaling sweep failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
  return p


def events(sweep_dir, run_id, kind=None):
  rows = io.read_jsonl(os.path.join(sweep_dir, "runs", run_id, "events.jsonl"))
  return [r for r in rows if kind is None or r["event"] == kind]


def test_four_size_ladder_completes_and_loads(tmp_path, env):
  cfg = write_config(tmp_path / "ladder.py", sizes=(1.2e4, 2.5e4, 5e4, 1e5))
  d = str(tmp_path / "sweep")
  p = sweep(env, cfg, d)
  df = results.load(d)
  assert results.load is sweep_results.load
  assert len(df) == 4 and (df["status"] == "completed").all()
  assert sorted(df["run_id"]) == sorted(run_ids(cfg)) and df["size"].nunique() == 4
  assert df["params"].is_monotonic_increasing
  for _, row in df.iterrows():
    cfg_json = io.read_json(os.path.join(d, "runs", row["run_id"], "config.json"))
    p_exact = accounting.params("gpt", ml_collections.ConfigDict(cfg_json["model"]))
    assert row["params"] == p_exact["total"] and row["params_nonembed"] == p_exact["nonembed"]
    assert row["tokens"] >= 5120 and row["ladder"] == "params" and row["budget"] == 5120
    assert row["eval_loss"] < 5.0  # learned something: uniform over 259 bytes is 5.56 (measured 4.18-4.23)
  sj = io.read_json(os.path.join(d, "sweep.json"))
  assert [r["run_id"] for r in sj["runs"]] == sorted(df["run_id"]) and sj["config"]["kind"] == "params"
  assert "run_id" in p.stdout and "4 runs: 4 completed" in p.stdout  # the summary table
  # Relaunching (here through the library entry point) trains nothing.
  again = runner.run_sweep(load_config(cfg), d, progress=False)
  assert again["run_id"].tolist() == df["run_id"].tolist()
  assert all(len(events(d, r, "start")) == 1 for r in df["run_id"])


def test_two_concurrent_sweeps_train_each_run_once(tmp_path, env):
  cfg = write_config(tmp_path / "conc.py", seeds=(0, 1, 2, 3))
  d = str(tmp_path / "sweep")
  procs = [sweep(env, cfg, d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  df = results.load(d)
  assert len(df) == 4 and (df["status"] == "completed").all()
  for run_id in df["run_id"]:
    starts = events(d, run_id, "start")
    assert len(starts) == 1, (run_id, starts)  # claimed, hence trained, by exactly one process
  assert all("4 runs: 4 completed" in o for o in outs)  # each waited for the other's runs


def test_diverging_run_is_recorded_and_the_pool_goes_on(tmp_path, env):
  # lr x 1e4 = 30: Adam blows the loss up within a few steps.
  # Each pool slot pinned to its own core (cpus_per_worker=1) where the machine has two.
  cfg = write_config(tmp_path / "div.py", lr_multipliers=(1.0, 1e4), executor="pool", cpus_per_worker=1)
  d = str(tmp_path / "sweep")
  good, bad = run_ids(cfg)
  assert good.endswith("-lrx1-s0") and bad.endswith("-lrx10000-s0")
  p = sweep(env, cfg, d, "--workers=2")
  assert "os.fork()" not in p.stderr  # slots pin themselves in the child: no fork of this threaded process
  cpus = [events(d, r, "start")[0]["cpus"] for r in (good, bad)]
  assert all(len(c) == 1 for c in cpus), cpus
  if len(os.sched_getaffinity(0)) >= 2:
    assert cpus[0] != cpus[1], cpus
  df = results.load(d).set_index("run_id")
  assert df.loc[good, "status"] == "completed"
  assert df.loc[bad, "status"] == "diverged"
  # A relaunch leaves it alone; --retry_failed runs it again, keeping the old result aside.
  runner.run_sweep(load_config(cfg), d, progress=False)
  assert len(events(d, bad, "start")) == 1
  sweep(env, cfg, d, "--retry_failed", "--executor=local")
  assert io.read_json(os.path.join(d, "runs", bad, "attempts", "1", "result.json"))["status"] == "diverged"
  assert io.read_json(os.path.join(d, "runs", bad, "result.json"))["status"] == "diverged"
  assert len(events(d, bad, "start")) == 2 and len(events(d, good, "start")) == 1


def test_slurm_executor_through_submitit_local(tmp_path, env):
  cfg = write_config(tmp_path / "slurm.py", seeds=(0, 1), executor="slurm")
  d = str(tmp_path / "sweep")
  sweep(env, cfg, d)
  df = results.load(d)
  assert len(df) == 2 and (df["status"] == "completed").all()
  jobs = {io.read_json(os.path.join(d, "runs", r, "slurm.json"))["job_id"] for r in df["run_id"]}
  assert len(jobs) == 2
  assert os.path.isdir(os.path.join(d, "slurm"))  # submitit's job folders (pickles, logs)


# A sweep of a packed pair (seeds 0, 1) and a single run (seed 2), killed at every phase boundary in turn
# (each relaunch resumes and dies at the next point), then relaunched clean.
SWEEP_KILL_CHAIN = [
    "run_claimed@1",           # the pair's locks held, start events written, nothing trained
    "checkpoint_saved@3",      # member 0 saved steps 5 and 10, member 1 only 5: the pair resumes from 5
    "eval_batch@1",            # both final checkpoints (20) committed; inside the final eval
    "before_result@1",         # relaunch at the final step trains nothing; eval rows logged, no result.json
    "write:result.json@2",     # member 0's result.json written, member 1's torn (temp file, no rename)
    "sweep_between_runs@1",    # member 1 finished alone from its final checkpoint; the next task not started
    "run_recorded@1",          # the single run trained and recorded; its lock not released
]


def test_sweep_killed_at_every_phase_trains_each_run_once(tmp_path, env):
  cfg = write_config(tmp_path / "chain.py", seeds=(0, 1, 2), pack=2, checkpoint_every=5)
  ref_dir, d = str(tmp_path / "ref"), str(tmp_path / "sweep")
  sweep(env, cfg, ref_dir)
  ref = results.load(ref_dir).set_index("run_id")
  for fault in SWEEP_KILL_CHAIN:
    p = subprocess.run(
        [SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={d}"], env=dict(env, SCALING_FAULT=fault), cwd=ROOT,
        capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, f"{fault}: exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
  sweep(env, cfg, d)
  df = results.load(d).set_index("run_id")
  assert (df["status"] == "completed").all() and len(df) == 3
  for run_id in df.index:  # the same numbers as the sweep never interrupted
    assert df.loc[run_id, "eval_loss"] == ref.loc[run_id, "eval_loss"], run_id
    assert df.loc[run_id, "train_loss"] == ref.loc[run_id, "train_loss"], run_id
    # Never started again once its result.json existed (a kill can precede the 'end' event, not the result).
    done_at = os.path.getmtime(os.path.join(d, "runs", run_id, "result.json"))
    assert not any(e["event"] == "start" and e["time"] > done_at for e in events(d, run_id)), run_id
    assert [e["status"] for e in events(d, run_id, "end")] in ([], ["completed"]), run_id
    steps = [r["step"] for r in io.read_jsonl(os.path.join(d, "runs", run_id, "metrics.jsonl")) if "train_loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 20, run_id
    assert not os.path.exists(os.path.join(d, "runs", run_id, "attempts")), run_id  # no group restarted afresh
  single = df.index[-1]  # seed 2, killed after it was recorded: trained by one process, never again
  assert len(events(d, single, "start")) == 1 and events(d, single, "end")[0]["status"] == "completed"


def test_config_diff_treats_fields_added_later_at_their_default_as_unchanged():
  from scaling import config as config_lib
  new = config_lib.base("gpt", "nano").to_dict()
  old = {**new, "data": {k: v for k, v in new["data"].items() if k not in config_lib.FILES_DEFAULTS}}
  assert runid.config_diff(old, new) == []  # a run written before data.text_field existed
  changed = {**new, "data": {**new["data"], "text_field": "content"}}
  assert runid.config_diff(old, changed) == ["data.text_field: 'text' -> 'content'"]
