"""Shared test settings, and the data the oracles need: names.txt (the copy
that comes with microgpt) and microgpt.py's recorded runs (tests/data/,
whose README says how they were made)."""
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("microgpt", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("microgpt")

DATA = Path(__file__).resolve().parent / "data"


def pytest_collection_modifyitems(config, items):
    """The pure-Python backend's whole runs belong to its own pass (MICROGPT_PUREPYTHON=1),
    which .ci/run makes: elsewhere they are not collected, rather than skipped."""
    import microgpt
    if microgpt.BACKEND == "python":
        return
    kept = [item for item in items if item.get_closest_marker("pure_python_pass") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture
def char_device(tmp_path):
    """A character device like /dev/null, made in tmp_path: a test that a device is never
    replaced must not risk the system's own."""
    import stat
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


@pytest.fixture(scope="session")
def names_txt():
    """The path of names.txt, the copy that comes with microgpt."""
    from microgpt.data import names_path
    return Path(names_path())


@pytest.fixture(scope="session")
def references():
    """The recorded default runs of both revisions of microgpt.py, by recipe
    name: each its stdout (bytes) and its JSON."""
    files = {"v1": "microgpt_py_default", "v2": "microgpt_final_default"}
    return {recipe: {"stdout": (DATA / f"{stem}.stdout.txt").read_bytes(),
                     "json": json.loads((DATA / f"{stem}.json").read_text())}
            for recipe, stem in files.items()}


@pytest.fixture(scope="session")
def reference(references):
    """microgpt.py's recorded default run (its first revision)."""
    return references["v1"]
