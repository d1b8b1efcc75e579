"""Shared fixtures. Datasets are prepared offline into a temporary TFDS dir."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory):
  """One persistent compilation cache for the session (and the CLI
  subprocesses it starts): identical programs compile once."""
  from jaxticket.core import runtime
  path = os.environ.get("JAXTICKET_TEST_COMPILE_CACHE") or str(
      tmp_path_factory.mktemp("jax_cache"))
  os.environ[runtime.CACHE_ENV] = path
  runtime.enable_compile_cache(path)
  yield path


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
  """Point tfds at a session-wide temporary dir (never the user's)."""
  if "JAXTICKET_TEST_TFDS_DIR" in os.environ:  # reuse between runs if asked
    path = os.environ["JAXTICKET_TEST_TFDS_DIR"]
  else:
    path = str(tmp_path_factory.mktemp("tfds"))
  old = os.environ.get("TFDS_DATA_DIR")
  os.environ["TFDS_DATA_DIR"] = path
  yield path
  if old is None:
    os.environ.pop("TFDS_DATA_DIR", None)
  else:
    os.environ["TFDS_DATA_DIR"] = old


@pytest.fixture(scope="session")
def mnist1d(tfds_data_dir):
  from jaxticket import data
  return data.load("mnist1d")
