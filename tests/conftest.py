"""Shared fixtures: every test gets a fresh param store, a fixed seed and its own
cache."""

import pyro
import pytest


@pytest.fixture(autouse=True)
def fresh_pyro(tmp_path, monkeypatch):
    """Seed everything, clear Pyro's global param store, and point the checkpoint cache
    at a temporary folder so no test reads or writes the repository's cache."""
    monkeypatch.setenv("BDL_CACHE_DIR", str(tmp_path / "model_cache"))
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()
