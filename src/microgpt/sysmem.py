"""
How much more memory this process may allocate, as the machine and its
limits say:

>>> have = available()          # None where nothing can be read (not Linux)
>>> have is None or have.total >= 0
True

``available`` is the smallest of: MemAvailable in /proc/meminfo, what the
cgroup's memory limit leaves (v2 memory.max, v1 memory.limit_in_bytes,
at every level up the hierarchy, page cache that can be dropped not
counted as used), and what ``ulimit -v`` (RLIMIT_AS) and ``ulimit -d``
(RLIMIT_DATA) leave this process. Swap is not counted.
"""
import os

__all__ = ["Available", "available", "format_bytes"]


class Available:
    """How much more this process may allocate: ``total`` bytes, limited by
    ``source``, one of "memory" (MemAvailable), "cgroup", "ulimit -v",
    "ulimit -d"."""

    def __init__(self, total, source):
        self.total, self.source = total, source

    def describe(self):
        """'21.4 GB is available', or what limit leaves that much."""
        size = format_bytes(self.total)
        if self.source == "memory":
            return f"{size} is available"
        limit = "the cgroup's memory limit" if self.source == "cgroup" else self.source
        return f"{size} is available under {limit}"

    def __repr__(self):
        return f"Available({self.total:,}, {self.source!r})"


def available(proc="/proc", cgroup="/sys/fs/cgroup"):
    """How much more memory this process may use: an Available, or None where
    none of the sources can be read (then nothing should be refused)."""
    found = []
    free = _meminfo(os.path.join(proc, "meminfo"), "MemAvailable").get("MemAvailable")
    if free is not None:
        found.append(Available(free, "memory"))
    headroom = _cgroup_headroom(os.path.join(proc, "self", "cgroup"), cgroup)
    if headroom is not None:
        found.append(Available(headroom, "cgroup"))
    found += _rlimit_headroom(os.path.join(proc, "self", "status"))
    return min(found, key=lambda a: a.total, default=None)


def _read(path):
    try:
        with open(path, "rb") as f:     # (binary: half the time of a text file)
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def _meminfo(path, *names):
    """Fields of /proc/meminfo or /proc/self/status, "Name:   123 kB" lines,
    as {name: bytes}; the names missing are left out."""
    text, fields = "\n" + (_read(path) or ""), {}
    for name in names:
        start = text.find(f"\n{name}:")
        if start >= 0:
            parts = text[start + len(name) + 2:text.find("\n", start + 1)].split()
            if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                fields[name] = int(parts[0]) * 1024
    return fields


def _number(path):
    text = _read(path)
    text = text.strip() if text else ""
    return int(text) if text.isdigit() else None


def _stat(path, *names):
    """The first of names in a cgroup's memory.stat, or 0."""
    values = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return next((values[name] for name in names if name in values), 0)


_LIMITED = {}       # (self_cgroup, root): the cgroups with a memory limit, found once


def _cgroup_headroom(self_cgroup, root):
    """The least that any memory-limited cgroup this process is in leaves.
    Which of them have a limit is looked up once a process (a walk of a
    few directories); their usage each time."""
    key = (self_cgroup, root)
    if key not in _LIMITED:
        _LIMITED[key] = [(headroom, directory) for headroom, directory
                         in _cgroups(self_cgroup, root) if headroom(directory) is not None]
    found = [headroom(directory) for headroom, directory in _LIMITED[key]]
    return min((value for value in found if value is not None), default=None)


def _cgroups(self_cgroup, root):
    """(headroom function, directory) of each cgroup this process is in, its
    own and their parents (the limits of all of them apply), v2 and v1."""
    v1_path = v2_path = None
    for line in (_read(self_cgroup) or "").splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    found = []
    if v2_path is not None:
        for mount in (root, os.path.join(root, "unified")):
            found += [(_v2_headroom, d) for d in _walk(mount, v2_path)]
    if v1_path is not None:
        found += [(_v1_headroom, d) for d in _walk(os.path.join(root, "memory"), v1_path)]
    return found


def _walk(mount, path):
    """The directory of the cgroup at path under mount, and of its parents.
    Inside a cgroup namespace the path may not exist under the mount: then
    the mount's root is this cgroup."""
    mount = os.path.normpath(mount)
    directory = os.path.normpath(os.path.join(mount, path.strip("/")))
    if not directory.startswith(mount) or not os.path.isdir(directory):
        if not os.path.isdir(mount):
            return []
        directory = mount
    found = [directory]
    while len(directory) > len(mount):
        directory = os.path.dirname(directory)
        found.append(directory)
    return found


def _v2_headroom(directory):
    limit = _number(os.path.join(directory, "memory.max"))    # "max": no limit
    if limit is None:
        return None
    used = _number(os.path.join(directory, "memory.current"))
    if used is None:
        return None
    cache = _stat(os.path.join(directory, "memory.stat"), "inactive_file")
    return max(0, limit - max(0, used - cache))


def _v1_headroom(directory):
    limit = _number(os.path.join(directory, "memory.limit_in_bytes"))
    if limit is None or limit >= 1 << 60:                       # about 2**63: no limit
        return None
    used = _number(os.path.join(directory, "memory.usage_in_bytes"))
    if used is None:
        return None
    cache = _stat(os.path.join(directory, "memory.stat"), "total_inactive_file",
                  "inactive_file")
    return max(0, limit - max(0, used - cache))


def _rlimit_headroom(status):
    """What ulimit -v and ulimit -d leave, after what the process has mapped."""
    try:
        import resource
    except ImportError:         # not Unix
        return []
    found = []
    mapped = None
    for limit, name, used in ((resource.RLIMIT_AS, "ulimit -v", "VmSize"),
                              (resource.RLIMIT_DATA, "ulimit -d", "VmData")):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY and soft >= 0:
            mapped = _meminfo(status, "VmSize", "VmData") if mapped is None else mapped
            found.append(Available(max(0, soft - mapped.get(used, 0)), name))
    return found


def format_bytes(n):
    """'38.6 GB', '512 MB', '12 kB': decimal units, three digits or so."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{n} bytes"
