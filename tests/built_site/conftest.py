"""The built-site checks read what `make book` left: its model cache included."""

import pytest


@pytest.fixture(autouse=True)
def fresh_pyro():
    """Overrides tests/conftest.py's fixture of the same name, which points the model
    cache at an empty temporary folder: a page's cells run here must load the models the
    build trained (from ``.model_cache/`` or ``$BDL_CACHE_DIR`` as set by the caller),
    not train them again."""
    yield
