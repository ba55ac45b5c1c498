"""microgpt.sysmem: what the machine has, read from /proc and cgroup files
made up here."""
import resource

import pytest

from microgpt import sysmem
from microgpt.sysmem import available, format_bytes

GiB, MiB = 1 << 30, 1 << 20


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 999, 1000, 12_345_678, 999.9e6, 38.6e9, 123.4e9,
                                      3.84e12, 1234e12)] == [
        "0 bytes", "999 bytes", "1.0 kB", "12.3 MB", "1,000 MB", "38.6 GB", "123 GB",
        "3.8 TB", "1,234 TB"]


@pytest.fixture
def no_rlimits(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)


def fake(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "proc"), str(tmp_path / "cgroup")


def test_mem_available(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {"proc/meminfo": "MemTotal: 8000000 kB\nMemFree: 1000 kB\n"
                                                   "MemAvailable: 4000000 kB\n"})
    got = available(proc, cgroup)
    assert (got.total, got.source) == (4000000 * 1024, "memory")
    assert got.describe() == "4.1 GB is available"


def test_nothing_known_is_none(tmp_path, no_rlimits):
    assert available(*fake(tmp_path, {})) is None


def test_cgroup_v2_every_level_counts(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/cgroup": "0::/user.slice/app.scope\n",
        "cgroup/cgroup.controllers": "memory\n",
        "cgroup/user.slice/app.scope/memory.max": f"{2 * GiB}\n",
        "cgroup/user.slice/app.scope/memory.current": f"{GiB}\n",
        "cgroup/user.slice/app.scope/memory.stat": f"anon 1\ninactive_file {256 * MiB}\n",
        "cgroup/user.slice/memory.max": "max\n",
        "cgroup/user.slice/memory.current": f"{5 * GiB}\n",
    })
    got = available(proc, cgroup)       # 2 GiB - (1 GiB - 256 MiB of droppable cache)
    assert (got.total, got.source) == (GiB + 256 * MiB, "cgroup")
    assert got.describe() == "1.3 GB is available under the cgroup's memory limit"
    (tmp_path / "cgroup/user.slice/app.scope/memory.current").write_text(f"{GiB + 200 * MiB}\n")
    assert available(proc, cgroup).total == GiB + 56 * MiB     # usage is read each time
    (tmp_path / "cgroup/user.slice/memory.max").write_text(f"{5 * GiB + 100 * MiB}\n")
    sysmem._LIMITED.clear()             # which cgroups have a limit: read once a process
    assert available(proc, cgroup).total == 100 * MiB          # the parent's limit is tighter


def test_cgroup_v2_inside_a_namespace(tmp_path, no_rlimits):
    # /proc/self/cgroup names a path the namespace's mount does not show: its root is ours
    proc, cgroup = fake(tmp_path, {
        "proc/self/cgroup": "0::/../../somewhere\n",
        "cgroup/memory.max": f"{GiB}\n",
        "cgroup/memory.current": f"{GiB - 10 * MiB}\n",
    })
    assert available(proc, cgroup).total == 10 * MiB


def test_cgroup_v1(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/jobs/42\n0::/\n",
        "cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",    # no limit
        "cgroup/memory/memory.usage_in_bytes": f"{40 * GiB}\n",
        "cgroup/memory/jobs/42/memory.limit_in_bytes": f"{512 * MiB}\n",
        "cgroup/memory/jobs/42/memory.usage_in_bytes": f"{200 * MiB}\n",
        "cgroup/memory/jobs/42/memory.stat": f"cache 1\ntotal_inactive_file {100 * MiB}\n",
    })
    got = available(proc, cgroup)
    assert (got.total, got.source) == (412 * MiB, "cgroup")


def test_ulimit_v_and_d(tmp_path, monkeypatch):
    limits = {resource.RLIMIT_AS: (GiB, GiB), resource.RLIMIT_DATA: (3 * GiB, 3 * GiB)}
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: limits.get(which, (resource.RLIM_INFINITY,) * 2))
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/status": "Name: python\nVmSize:\t  102400 kB\nVmData:\t   51200 kB\n",
    })
    got = available(proc, cgroup)
    assert (got.total, got.source) == (GiB - 100 * MiB, "ulimit -v")
    assert got.describe() == "969 MB is available under ulimit -v"
    limits[resource.RLIMIT_AS] = (resource.RLIM_INFINITY,) * 2
    limits[resource.RLIMIT_DATA] = (GiB // 2, GiB)
    got = available(proc, cgroup)
    assert (got.total, got.source) == (GiB // 2 - 50 * MiB, "ulimit -d")


def test_this_machine():
    got = available()
    if got is not None:
        assert got.total >= 0 and got.source in ("memory", "cgroup", "ulimit -v", "ulimit -d")
