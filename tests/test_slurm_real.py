"""`scaling sweep --executor=slurm` on a real single-node SLURM (tests/slurm_cluster.py): a job array equals a
local run, a requeued job resumes from its checkpoint, a cancelled job shows SLURM's state and a relaunch
finishes it, and the sweep log stays quiet without accounting. All in one xdist group: one cluster."""

import os
import subprocess
import time

import pytest

from scaling import io, results
from tests.slurm_cluster import slurm  # noqa: F401  (the fixture)
from tests.test_sweep_run import ROOT, SCALING, env, events, write_config  # noqa: F401

pytestmark = pytest.mark.xdist_group("slurm")
SLURM = ["--config.executor.slurm.cluster=slurm", "--config.executor.slurm.cpus_per_task=1",
         "--config.executor.compile_cache="]


def sweep(env, cfg, d, *args, background=False):
  cmd = [SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={d}", "--executor=slurm", *SLURM, *args]
  if background:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, f"scaling sweep failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
  return p


def wait_for(what, cond, timeout_s=300):
  deadline = time.time() + timeout_s
  while not cond():
    assert time.time() < deadline, f"timed out waiting for {what}"
    time.sleep(0.2)


def job_of(d, run_id):
  return io.read_json(os.path.join(d, "runs", run_id, "slurm.json"))["job_id"]


def squeue(slurm_env, job):
  return subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", job.split("_")[0], "-o", "%i|%T"], env=slurm_env,
                        capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def senv(env, slurm):
  return dict(env, SLURM_CONF=slurm["SLURM_CONF"])


def test_job_array_equals_local_and_logs_quietly(tmp_path, senv):
  cfg = write_config(tmp_path / "arr.py", seeds=(0, 1))
  local, d = str(tmp_path / "local"), str(tmp_path / "slurm")
  subprocess.run([SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={local}"], env=senv, cwd=ROOT, check=True,
                 capture_output=True)
  p = sweep(senv, cfg, d)
  ref, got = results.load(local).set_index("run_id"), results.load(d).set_index("run_id")
  assert (got["status"] == "completed").all() and sorted(got.index) == sorted(ref.index)
  jobs = [job_of(d, r) for r in got.index]
  assert len({j.split("_")[0] for j in jobs}) == 1 and all("_" in j for j in jobs)  # one array, a task each
  for r in got.index:  # same process layout, same machine, same XLA: bit-identical
    assert got.loc[r, "eval_loss"] == ref.loc[r, "eval_loss"], r
    assert got.loc[r, "train_loss"] == ref.loc[r, "train_loss"], r
  log = p.stdout + p.stderr
  assert sum("sacct" in line for line in log.splitlines()) <= 1, log[-3000:]


def test_requeue_resumes_from_checkpoint_every_step_once(tmp_path, senv):
  cfg = write_config(tmp_path / "rq.py", checkpoint_every=5)
  ref_dir, d = str(tmp_path / "ref"), str(tmp_path / "slurm")
  subprocess.run([SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={ref_dir}"], env=senv, cwd=ROOT, check=True,
                 capture_output=True)
  mark = str(tmp_path / "blocked")
  p = sweep(dict(senv, SCALING_FAULT="checkpoint_saved@1", SCALING_FAULT_ACTION="wait", SCALING_FAULT_MARK=mark),
            cfg, d, background=True)
  wait_for("the job to block after its step-5 checkpoint", lambda: os.path.exists(mark))
  (run_id,) = os.listdir(os.path.join(d, "runs"))
  job = job_of(d, run_id)
  subprocess.run(["scontrol", "requeue", job], env=senv, check=True)
  wait_for("the job pending again", lambda: "PENDING" in squeue(senv, job))
  subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=senv, check=True)  # skip the 2-min hold
  out = p.communicate(timeout=300)[0]
  assert p.returncode == 0, out[-3000:]
  got, ref = results.load(d).set_index("run_id"), results.load(ref_dir).set_index("run_id")
  assert got.loc[run_id, "status"] == "completed"
  assert [e["resumed_from"] for e in events(d, run_id, "start")] == [0, 5]
  steps = [r["step"] for r in io.read_jsonl(os.path.join(d, "runs", run_id, "metrics.jsonl")) if "train_loss" in r]
  assert steps == sorted(set(steps)) and steps[-1] == 20
  assert got.loc[run_id, "eval_loss"] == ref.loc[run_id, "eval_loss"]  # resume is exact (the kill-chain test)


def test_scancel_shows_slurm_state_and_a_relaunch_finishes(tmp_path, senv):
  # cpus_per_task 2 on the node's 2 CPUs: one array task runs (blocked after its first checkpoint), one waits.
  cfg = write_config(tmp_path / "cancel.py", seeds=(0, 1), checkpoint_every=5)
  d, mark = str(tmp_path / "slurm"), str(tmp_path / "blocked")
  fault = dict(senv, SCALING_FAULT="checkpoint_saved@1", SCALING_FAULT_ACTION="wait", SCALING_FAULT_MARK=mark)
  wide = [f"--config.executor.slurm.cpus_per_task={os.cpu_count()}", "--config.executor.slurm.wait=False"]
  sweep(fault, cfg, d, *wide)
  wait_for("a job to block after its step-5 checkpoint", lambda: os.path.exists(mark))
  status = subprocess.run([SCALING, "status", d], env=senv, cwd=ROOT, capture_output=True, text=True).stdout
  assert "RUNNING" in status and "PENDING" in status, status
  job = job_of(d, sorted(os.listdir(os.path.join(d, "runs")))[0]).split("_")[0]
  subprocess.run(["scancel", job], env=senv, check=True)
  wait_for("both cancelled", lambda: squeue(senv, job).count("CANCELLED") == 2)
  status = subprocess.run([SCALING, "status", d], env=senv, cwd=ROOT, capture_output=True, text=True).stdout
  assert status.count("CANCELLED") == 2 and "completed" not in status, status
  sweep(senv, cfg, d)  # the relaunch: resubmits both (their jobs have ended), one resumes from step 5
  df = results.load(d).set_index("run_id")
  assert (df["status"] == "completed").all() and len(df) == 2
  assert sorted(e["resumed_from"] for r in df.index for e in events(d, r, "start"))[-1] == 5


def test_time_limit_requeues_through_submitit_and_completes(tmp_path, senv):
  cfg = write_config(tmp_path / "tl.py", checkpoint_every=5)
  ref_dir, d, mark = str(tmp_path / "ref"), str(tmp_path / "slurm"), str(tmp_path / "blocked")
  subprocess.run([SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={ref_dir}"], env=senv, cwd=ROOT, check=True,
                 capture_output=True)
  p = sweep(dict(senv, SCALING_FAULT="checkpoint_saved@1", SCALING_FAULT_ACTION="wait", SCALING_FAULT_MARK=mark),
            cfg, d, background=True)
  wait_for("the job to block after its step-5 checkpoint", lambda: os.path.exists(mark))
  (run_id,) = os.listdir(os.path.join(d, "runs"))
  job = job_of(d, run_id)
  # A 1-minute limit: SLURM sends submitit's SIGUSR2 (due 90 s before the limit) now; submitit requeues the job.
  subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=1"], env=senv, check=True)
  wait_for("the job requeued by submitit", lambda: "PENDING" in squeue(senv, job))
  subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10", "StartTime=now"], env=senv, check=True)
  out = p.communicate(timeout=300)[0]
  assert p.returncode == 0, out[-3000:]
  logs = "".join(open(os.path.join(d, "slurm", job, f)).read() for f in os.listdir(os.path.join(d, "slurm", job))
                 if f.endswith(".err") or f.endswith(".out"))
  assert "Requeued job" in logs, logs[-3000:]  # submitit's own requeue, not ours
  got, ref = results.load(d).set_index("run_id"), results.load(ref_dir).set_index("run_id")
  assert got.loc[run_id, "status"] == "completed"
  assert [e["resumed_from"] for e in events(d, run_id, "start")] == [0, 5]
  assert got.loc[run_id, "eval_loss"] == ref.loc[run_id, "eval_loss"]


def test_two_task_job_equals_one_process(tmp_path, senv):
  cfg = write_config(tmp_path / "mt.py")
  ref_dir, d = str(tmp_path / "ref"), str(tmp_path / "slurm")
  subprocess.run([SCALING, "sweep", f"--config={cfg}", f"--sweep_dir={ref_dir}"], env=senv, cwd=ROOT, check=True,
                 capture_output=True)
  # 2 tasks x 4 fake devices: the same 8-device data-parallel mesh as the one-process reference.
  sweep(dict(senv, XLA_FLAGS="--xla_force_host_platform_device_count=4"), cfg, d,
        "--config.executor.slurm.tasks_per_node=2")
  got, ref = results.load(d).iloc[0], results.load(ref_dir).iloc[0]
  assert got["status"] == "completed"
  job = job_of(d, got["run_id"])
  # Both tasks trained the run: without jax.distributed each would be process 0, and the one losing the
  # run's lock would train nothing.
  for task in (0, 1):
    with open(os.path.join(d, "slurm", job, f"{job}_{task}_log.out")) as f:
      assert f"eval_loss={got['eval_loss']:.4f}" in f.read(), task
  # Tolerance: the gradient all-reduce across the two processes (gloo) sums in another order than in one process.
  assert abs(got["eval_loss"] - ref["eval_loss"]) <= 1e-4 * ref["eval_loss"], (got["eval_loss"], ref["eval_loss"])
