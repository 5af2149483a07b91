"""Tests run on CPU with 8 fake devices; this must happen before jax is imported anywhere."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One dataset cache for the whole session (the embedded corpus is built once, then reused)."""
  d = os.environ.get("SCALING_TEST_DATA_DIR")
  if not d and os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n: the workers share one cache under the run's common temp root (corpus.build_lock makes
    # the first worker build it while the others wait), instead of each building the corpus again.
    d = str(tmp_path_factory.getbasetemp().parent / "tfds")
    os.makedirs(d, exist_ok=True)
  d = d or str(tmp_path_factory.mktemp("tfds"))
  os.environ["SCALING_DATA_DIR"] = d
  return d
