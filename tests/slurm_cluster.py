"""A real single-node SLURM for the tests: munged (as the munge user, private socket), slurmctld and slurmd
with a private slurm.conf in a temp dir, on free ports. SLURM_CONF points every client and daemon at it.
Absent binaries skip the tests, unless SCALING_REQUIRE_SLURM=1 (CI installs slurm-wlm and munge)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _mem_mb() -> int:
  with open("/proc/meminfo") as f:
    kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
  return int(kb / 1024 * 0.8)  # slurmd refuses a node claiming more than it has


CONF = """ClusterName=scalingtest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge/sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
# submitit ignores SIGTERM (it waits for SIGUSR2): a requeue / scancel kills the job KillWait s later
KillWait=2
NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _stop(pid_file: str) -> None:
  try:
    with open(pid_file) as f:
      pid = int(f.read().strip())
    os.kill(pid, signal.SIGTERM)
  except (OSError, ValueError):
    return
  for _ in range(50):
    try:
      os.kill(pid, 0)
    except OSError:
      return
    time.sleep(0.1)


@pytest.fixture(scope="module")
def slurm():
  """Yields the environment (SLURM_CONF) clients need; the cluster is stopped by its pid files after."""
  missing = [b for b in BINARIES if shutil.which(b) is None]
  if missing or os.geteuid() != 0:
    why = f"no {', '.join(missing)} (apt-get install slurm-wlm munge)" if missing else "needs root"
    if os.environ.get("SCALING_REQUIRE_SLURM") == "1":
      pytest.fail(f"SCALING_REQUIRE_SLURM=1 but a real SLURM cannot start: {why}")
    pytest.skip(f"real SLURM: {why}")
  d = tempfile.mkdtemp(prefix="scaling-slurm-")
  os.chmod(d, 0o755)  # munged (the munge user) must reach its socket directory
  for sub in ("munge", "state", "spool"):
    os.makedirs(os.path.join(d, sub))
  shutil.chown(os.path.join(d, "munge"), "munge", "munge")
  os.chmod(os.path.join(d, "munge"), 0o755)
  key = "/etc/munge/munge.key"
  if not os.path.exists(key):
    key = os.path.join(d, "munge", "munge.key")
    subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", f"mungekey --create --keyfile={key}"], check=True)
  m = os.path.join(d, "munge")
  subprocess.run(["su", "-s", "/bin/sh", "munge", "-c",
                  f"munged --socket={m}/sock --key-file={key} --pid-file={m}/pid --log-file={m}/log "
                  f"--seed-file={m}/seed"], check=True)
  host = socket.gethostname().split(".")[0]
  conf = os.path.join(d, "slurm.conf")
  with open(conf, "w") as f:
    f.write(CONF.format(host=host, d=d, ctld_port=_free_port(), d_port=_free_port(), cpus=os.cpu_count(),
                        mem=_mem_mb()))
  env = dict(os.environ, SLURM_CONF=conf)
  try:
    subprocess.run(["slurmctld", "-f", conf], env=env, check=True)
    subprocess.run(["slurmd", "-f", conf], env=env, check=True)
    deadline = time.time() + 60
    while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                                       text=True).stdout:
      if time.time() > deadline:
        raise RuntimeError(f"SLURM node not idle after 60 s; see {d}/slurmctld.log, {d}/slurmd.log")
      time.sleep(0.2)
    yield env
  finally:
    for pid in ("slurmd.pid", "slurmctld.pid", "munge/pid"):
      _stop(os.path.join(d, pid))
    shutil.rmtree(d, ignore_errors=True)
