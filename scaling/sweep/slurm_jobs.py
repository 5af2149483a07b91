"""SLURM's own view of jobs (squeue, then sacct), for the SLURM executor's wait loop and relaunch check.

squeue knows every job the controller holds (pending, running, and ended ones for MinJobAge, 300 s by
default) and needs no accounting storage; sacct, where the cluster has accounting, covers jobs that
ended before that. submitit's own watcher asks sacct only: on a cluster without accounting it warns on
every poll and never sees a cancelled job end (its `done()` then waits forever).
"""

import subprocess

# States after which SLURM runs nothing more for a job (a requeued job is PENDING / REQUEUED again).
ENDED = ("BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
         "PREEMPTED", "TIMEOUT")


def _ask(cmd: list[str]) -> str | None:
  """stdout; '' when SLURM knows none of the ids; None when the command cannot be run or fails."""
  try:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired):
    return None
  if p.returncode != 0:
    return "" if "Invalid job id" in p.stderr else None
  return p.stdout


def states(job_ids: list[str]) -> dict[str, str] | None:
  """{job id ('123' or array task '123_4'): SLURM state, e.g. 'PENDING'} for the jobs SLURM still knows;
  None when squeue cannot be asked (no SLURM on this host, controller down). A job absent has ended
  long ago (squeue forgot it and there is no accounting)."""
  if not job_ids:
    return {}
  base = sorted({j.split("_")[0] for j in job_ids})
  out = _ask(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(base)])
  if out is None:
    return None
  found = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
  missing = [j for j in job_ids if j not in found]
  if missing:  # ended before squeue's memory: accounting, where there is one (quietly nothing otherwise)
    acct = _ask(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(missing)]) or ""
    for line in acct.splitlines():
      jid, _, st = line.partition("|")
      if jid in missing and st:
        found[jid] = st.split()[0]  # 'CANCELLED by 0' -> 'CANCELLED'
  return {j: found[j] for j in job_ids if j in found}


def ended(state: str | None) -> bool:
  return state is None or state in ENDED
