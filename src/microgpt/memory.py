"""
How much memory a run needs, and how much the machine has.

microgpt-train asks before it allocates anything, so that a model that cannot
fit is refused in a moment instead of dying of a MemoryError, or of the
kernel's OOM killer, minutes later:

>>> from microgpt.model import Config
>>> need = needed(Config(27), path="fused", positions=8, steps=500, samples=20)
>>> have = available()          # None where nothing can be read (not Linux)
>>> have is None or need.total < have.total
True

``needed`` models what the code allocates, on each path:

- the fused path (``microgpt.fused``): one float64 array of parameters and
  one of gradients, Adam's two moments, and per step the tensors of one
  document (``block_size`` positions at most): each operation's output and,
  in the backward pass, its gradient, attention's saved softmax numerators
  (positions x heads x positions), the loss's saved exps, and the index
  arrays of the embeddings, the loss and the linear layers' visit orders;
- the scalar path (``--exact``, and everything under MICROGPT_PUREPYTHON=1,
  ``microgpt.model``): one ``Value`` per parameter, Adam's two lists of
  floats, and per step microgpt.py's graph, one ``Value`` per float
  operation (``graph_values`` counts them from the model's code).

The previous step's graph is still alive while the next one is built (the
training loop's ``loss`` holds it), so a step's peak is two graphs. The
bytes per Value and the other constants were measured (peak RSS, CPython
3.11, x86-64): a compiled Value is 80 bytes, and with the backward pass's
order of the graph two graphs take 171 to 183 bytes a Value (the estimate
takes 173); a pure-Python one, with its floats and tuples, about 200, and
two graphs 417 to 491 bytes a Value (the freed graph leaves the
allocator's pools fragmented, by a measure that depends on the sizes): the
estimate takes the middle, 455.

``available`` is the smallest of: MemAvailable in /proc/meminfo, what the
cgroup's memory limit leaves (v2 memory.max, v1 memory.limit_in_bytes,
at every level up the hierarchy, page cache that can be dropped not
counted as used), and what ``ulimit -v`` (RLIMIT_AS) and ``ulimit -d``
(RLIMIT_DATA) leave this process. Swap is not counted.
"""
import os

__all__ = ["Estimate", "Available", "needed", "available", "parameter_count",
           "graph_values", "sampling_values", "format_bytes"]

DOUBLE = 8                      # a float64, and a ptrdiff_t index
TENSOR_OVERHEAD = 256           # a fused Tensor object and its small allocations
FUSED_PARAMETER = 4 * DOUBLE    # value, gradient, Adam's m and v
SCALAR = {                      # bytes, measured: see the module's docstring
    "compiled": {"parameter": 96, "value": 81, "backward": 11},
    "python": {"parameter": 112, "value": 205, "backward": 45},
}
SCALAR_ADAM = 64                # per parameter: two list slots and two floats


class Estimate:
    """What a run needs: ``total`` bytes at its peak, for ``parameters``
    parameters and, at the peak of a training step, ``step_bytes`` of
    activations (the fused path) or of graph (the scalar path, ``values``
    Values a step)."""

    def __init__(self, path, parameters, total, step_bytes, values=0):
        self.path, self.parameters, self.total = path, parameters, total
        self.step_bytes, self.values = step_bytes, values

    def describe(self):
        """What the bytes are for, in a few words."""
        if self.path == "fused":
            return (f"{self.parameters:,} parameters at {FUSED_PARAMETER} bytes each with "
                    f"their gradients and Adam's moments, {format_bytes(self.step_bytes)} "
                    "for a step's activations")
        return (f"{self.parameters:,} parameters as scalar Values, {self.values:,} Values "
                f"in a step's graph, {format_bytes(self.step_bytes)} at a step's peak")

    def __repr__(self):
        return f"Estimate({self.path!r}, total={self.total:,})"


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


# What a run needs ---------------------------------------------------------------

def parameter_count(config):
    """microgpt.py's parameters: wte, wpe, lm_head, and 12 n_embd^2 a layer."""
    C = config.n_embd
    return 2 * config.vocab_size * C + config.block_size * C + config.n_layer * 12 * C * C


def graph_values(config, positions):
    """The Values of microgpt.py's graph of one step's loss over `positions`
    positions, parameters not counted: each +, *, **, exp, log and relu
    makes one, and each number it meets (the 0 a sum starts from, 1e-5, -1)
    a leaf. Counted from model.py's code, line by line (tests check it
    against real graphs)."""
    n = positions
    sizes = _graph_sizes(config)
    per_position = sizes["outside_layers"] + sizes["loss"] + config.n_layer * sizes["layer"]
    return (n * per_position + config.n_layer * sizes["per_key"] * n * (n + 1) // 2
            + n + 3)                                     # the mean of the losses


def sampling_values(config, positions):
    """The most Values alive while one sample of `positions` tokens is drawn:
    what the KV cache keeps of each position (the layers but the last whole,
    and of the last its rmsnorm, keys and values), and at the last position
    the rest of its graph, up to the softmax of the logits / temperature."""
    V, C, L, n = config.vocab_size, config.n_embd, config.n_layer, positions
    sizes = _graph_sizes(config)
    kept_last = sizes["rmsnorm"] + 2 * C * (2 * C + 1)
    kept = (n * (C + sizes["rmsnorm"] + kept_last + (L - 1) * sizes["layer"])
            + (L - 1) * sizes["per_key"] * n * (n + 1) // 2)
    last = (sizes["layer"] + sizes["per_key"] * n - kept_last + V * (2 * C + 1)
            + 2 * V + 6 * V + 1)            # lm_head, / temperature, softmax
    return kept + last


def _graph_sizes(config):
    V, C, H = config.vocab_size, config.n_embd, config.n_head
    activation = 4 * C * (2 if config.activation == "relu2" else 1)    # relu (** 2)
    # a linear of nout x nin: nout sums of nin products: nout * (2 nin + 1)
    # rmsnorm of C: 2C+1 (sum of squares), 2 (/ len), 2 (+ 1e-5), 1 (** -0.5), C (scale)
    rmsnorm = 3 * C + 6
    return {
        "rmsnorm": rmsnorm,
        "outside_layers": C + rmsnorm + V * (2 * C + 1),   # embeddings' sum, rmsnorm, lm_head
        "loss": 4 * V + 6,      # the exps, their sum, 1/sum and the target's prob, -log
        "layer": (2 * rmsnorm + 4 * C * (2 * C + 1)        # two rmsnorms, q k v wo
                  + 4 * C * (2 * C + 1) + activation + C * (8 * C + 1)  # fc1, its activation, fc2
                  + 2 * C + C + H),         # two residual sums; per head D outputs' +1, and +1
        # attention at position p over p + 1 keys, per head: logits (2D+3 each),
        # softmax (6 per key, +1 above), weighted sums (2 per key, +1 per output)
        "per_key": 4 * C + 9 * H,
    }


def _fused_step(config, n):
    """Bytes of one step's tensors on the fused path, for n positions:
    (forward, gradients), the index arrays counted with the forward."""
    V, C, H, L = config.vocab_size, config.n_embd, config.n_head, config.n_layer
    forward = (4 * n * C + 2 * n                         # embeddings, their sum, rmsnorm
               + L * (18 * n * C + H * n * n + 2 * H * n + 4 * n)
               + 2 * n * V + 2 * n + 1                   # lm_head, the loss's exps
               + 3 * n + n * V + L * 3 * n * C)          # ids, targets, visit orders
    gradients = 4 * n * C + L * 18 * n * C + n * V + 1
    tensors = 6 + 13 * L
    return DOUBLE * forward + TENSOR_OVERHEAD * tensors, DOUBLE * gradients


def _fused_sampling(config, n):
    """Bytes of one sample of n positions on the fused path, one row at a
    time: what the KV cache keeps of each position (the layers but the last
    whole, and of the last its rmsnorm, keys and values), and at the last
    position the rest of its tensors, up to the softmax of the logits."""
    V, C, H, L = config.vocab_size, config.n_embd, config.n_head, config.n_layer
    full_layer = 21 * C + 4 + 2 * H         # its tensors, saved numbers and visit order
    kept_last = 6 * C + 2                   # rmsnorm, keys, values, their visit order
    doubles = (n * (4 * C + 4 + (L - 1) * full_layer + kept_last)
               + (L - 1) * H * n * (n + 1) // 2
               + 15 * C + 2 + H * n + 2 * H + 2 * V)         # the last position's rest
    return DOUBLE * doubles + TENSOR_OVERHEAD * (n * (8 + 13 * (L - 1)) + 15)


def needed(config, path, positions, steps, samples):
    """The memory a run needs beyond what the process holds when it asks:
    an Estimate. path is "fused", or the scalar path's engine, "compiled" or
    "python"; positions is the longest document's (at most block_size).

    The parameters live throughout; Adam's moments (made even for 0 steps)
    and the training steps' graphs until training ends; then the samples'.
    A sample is taken to be as long as the longest document: it may run on
    to block_size, but a trained model ends it as its documents end."""
    n = max(1, min(positions, config.block_size))
    P = parameter_count(config)
    if path == "fused":
        forward, gradients = _fused_step(config, n)
        step = 2 * forward + gradients if steps else 0
        training = P * 2 * DOUBLE + step                   # Adam's m and v
        sampling = _fused_sampling(config, n) if samples else 0
        model = P * 2 * DOUBLE                              # values and gradients
        values = 0
    else:
        size = SCALAR[path]
        values = graph_values(config, n)
        step = values * (2 * size["value"] + size["backward"]) if steps else 0
        training = P * (SCALAR_ADAM if steps else 2 * DOUBLE) + step   # [0.0] * P, twice
        sampling = sampling_values(config, n) * size["value"] if samples else 0
        model = P * size["parameter"]
    total = model + max(training, sampling)
    return Estimate(path, P, total, step, values)


# What the machine has ------------------------------------------------------------

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


def format_bytes(n):
    """'38.6 GB', '512 MB', '12 kB': decimal units, three digits or so."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{n} bytes"


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
