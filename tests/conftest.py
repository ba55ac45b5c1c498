"""Shared test settings and the shared data: names.txt and microgpt.py's recorded run.

The shared folder is ../shared next to the project (or $MICROGPT_SHARED_DIR).
Tests that need it skip when it is missing, unless MICROGPT_REQUIRE_SHARED=1
(set by .ci/run), where a missing folder is a failure.
"""
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("microgpt", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("microgpt")

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir():
    candidates = [os.environ.get("MICROGPT_SHARED_DIR"), ROOT.parent / "shared"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "data" / "names.txt").is_file():
            return Path(candidate)
    return None


def _need_shared():
    shared = _shared_dir()
    if shared is None:
        message = "the shared data (../shared/data/names.txt) is not here"
        if os.environ.get("MICROGPT_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return shared


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
    """The path of the shared copy of names.txt."""
    return _need_shared() / "data" / "names.txt"


@pytest.fixture(scope="session")
def references():
    """The recorded default runs of both revisions of microgpt.py, by recipe
    name: each its stdout (bytes) and its JSON."""
    directory = _need_shared() / "reference"
    files = {"v1": "microgpt_py_default", "v2": "microgpt_final_default"}
    return {recipe: {"stdout": (directory / f"{stem}.stdout.txt").read_bytes(),
                     "json": json.loads((directory / f"{stem}.json").read_text())}
            for recipe, stem in files.items()}


@pytest.fixture(scope="session")
def reference(references):
    """microgpt.py's recorded default run (its first revision)."""
    return references["v1"]

