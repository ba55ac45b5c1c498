"""
How much memory a run needs.

microgpt-train asks before it allocates anything, so that a model that cannot
fit is refused in a moment instead of dying of a MemoryError, or of the
kernel's OOM killer, minutes later (``microgpt.sysmem`` says what the
machine has):

>>> from microgpt.model import Config
>>> need = needed(Config(27), path="fused", positions=8, steps=500, samples=20)
>>> have = available()          # None where nothing can be read (not Linux)
>>> have is None or need.total < have.total
True

``needed`` models what the code allocates, on each path:

- the fused path (``microgpt.fused``): one float64 array of parameters and
  one of gradients, Adam's two moments, and per step the tensors of its
  documents (one, or ``batch_size``; ``block_size`` positions at most
  each): each operation's output and,
  in the backward pass, its gradient, attention's saved softmax numerators
  (positions x heads x positions), the loss's saved exps, the index arrays
  of the embeddings, the loss and the linear layers' visit orders, and the
  work space of the vector kernels' attention backward pass (positions x
  positions a thread). The tensors' memory kept for reuse never exceeds the
  most they have had in use, or ``microgpt.fused.KEPT_AT_LEAST`` (1 MiB),
  so the steps' tensors bound it;
- the scalar path (``--exact``, and everything under MICROGPT_PUREPYTHON=1,
  ``microgpt.model``): one ``Value`` per parameter, Adam's two lists of
  floats, and per step microgpt.py's graph, one ``Value`` per float
  operation (``graph_values`` counts them from the model's code, and
  ``batch_values`` those of a batch).

The previous step's graph is still alive while the next one is built (the
training loop's ``loss`` holds it), so a step's peak depends on the
documents before it as well as its own: given the documents' lengths in
training order, the estimate takes the step and the one before it that
need the most. The bytes per
Value and the other constants were measured (peak RSS, CPython 3.11,
x86-64): a compiled Value is 64 bytes, 65 with its share of its slab, and
with the backward pass's order of the graph (11 bytes a Value) a step took
114 to 134 bytes a Value of peak RSS over the run before it (four sizes,
16 to 64 wide: the estimate takes 141 and is 3 to 9% above the peak); a pure-Python one, with its floats and tuples, about 200, and two
graphs 417 to 491 bytes a Value (the freed graph leaves the allocator's
pools fragmented, by a measure that depends on the sizes): the estimate
takes the middle, 455.
"""
from .sysmem import Available, available, format_bytes

__all__ = ["Estimate", "Available", "needed", "available", "parameter_count",
           "graph_values", "batch_values", "sampling_values", "format_bytes"]

DOUBLE = 8                      # a float64, and a ptrdiff_t index
TENSOR_OVERHEAD = 256           # a fused Tensor object and its small allocations
FUSED_PARAMETER = 4 * DOUBLE    # value, gradient, Adam's m and v
SCALAR = {                      # bytes, measured: see the module's docstring
    "compiled": {"parameter": 80, "value": 65, "backward": 11},
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


# What a run needs ---------------------------------------------------------------

def parameter_count(config):
    """microgpt.py's parameters: wte, wpe, lm_head, and 12 n_embd^2 a layer."""
    return config.num_params()


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


def batch_values(config, lengths):
    """The Values of the graph of a batch's loss, documents of `lengths`
    positions (a dict of {positions: documents}): each document's graph,
    and their mean, (1 / B) * sum(doc_losses): B sums, a mean's product
    and the two numbers it meets (0 and 1 / B)."""
    documents = sum(lengths.values())
    values = sum(count * graph_values(config, m) for m, count in lengths.items())
    return values if documents == 1 else values + documents + 3


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


def _fused_step(config, lengths):
    """Bytes of one step's tensors on the fused path, for documents of
    `lengths` positions ({positions: documents}, all in one tensor each):
    (forward, gradients), the index arrays counted with the forward."""
    V, C, H, L = config.vocab_size, config.n_embd, config.n_head, config.n_layer
    forward = gradients = 0
    for n, count in lengths.items():
        forward += count * (4 * n * C + 2 * n                  # embeddings, their sum, rmsnorm
                            + L * (18 * n * C + H * n * n + 2 * H * n + 4 * n)
                            + 2 * n * V + 2 * n + 1             # lm_head, the loss's exps
                            + 3 * n + n * V + L * 3 * n * C)    # ids, targets, visit orders
        gradients += count * (4 * n * C + L * 18 * n * C + n * V + 1)
    tensors = 6 + 13 * L
    return DOUBLE * forward + TENSOR_OVERHEAD * tensors, DOUBLE * gradients


def _work_space(config, n, threads, isa):
    """Bytes of the vector kernels' largest work space in a step of n
    positions: attention's backward pass, n x n doubles and a few rows for
    each part its heads are split into (csrc/kernels_template.h,
    ATTENTION_BACKWARD_SPACE); the plain C loops take none of note."""
    if isa == "plain" or n < 2:
        return 0
    C, H = config.n_embd, config.n_head
    parts = max(1, min(threads, H))
    return parts * DOUBLE * ((C // H) * 32 + n * n + 2 * n + 4 * n)


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


def needed(config, path, positions, steps, samples, lengths=None, threads=1, batch_size=1):
    """The memory a run needs beyond what the process holds when it asks:
    an Estimate. path is "fused", or the scalar path's engine, "compiled" or
    "python"; positions is the longest document's (at most block_size);
    lengths, if given, each training document's positions in the order the
    steps take them (else every document has `positions`; the two longest,
    in either order, give a bound for any order of single documents, the
    longest alone for batches); threads, the kernels' threads
    (microgpt.fused.set_threads); batch_size, the documents of a step.

    The parameters live throughout; Adam's moments (made even for 0 steps)
    and the training steps' graphs until training ends; then the samples'.
    A sample is taken to be as long as the longest document: it may run on
    to block_size, but a trained model ends it as its documents end."""
    block = config.block_size
    n = max(1, min(positions, block))
    lengths = [max(1, min(m, block)) for m in lengths] if lengths else [n]
    batches = _batches(lengths, steps, batch_size)
    P = parameter_count(config)
    if path == "fused":
        from .fused import KEPT_AT_LEAST, kernel_isa
        isa = kernel_isa()
        sizes = {batch: _fused_step(config, dict(batch)) for batch in set(batches)}

        def alone(b):           # a step's tensors and their gradients
            return sum(sizes[b])

        def after(a, b):        # the graph before (and its gradients) lives until
            return max(alone(a) + sizes[b][0], alone(b))    # this one's forward is done
        # the memory kept for the tensors holds on to the most they took at once
        # (or KEPT_AT_LEAST), the kernels' to their largest work space (a
        # document at a time)
        step = _training_peak(alone, after, batches, steps, KEPT_AT_LEAST) + \
            max(_work_space(config, m, threads, isa) for m in set(lengths)) if steps else 0
        training = P * 2 * DOUBLE + step                   # Adam's m and v
        sampling = _fused_sampling(config, n) if samples else 0
        model = P * 2 * DOUBLE                              # values and gradients
        values = 0
    else:
        size = SCALAR[path]
        values = graph_values(config, n)
        counts = {batch: batch_values(config, dict(batch)) for batch in set(batches)}
        graph, backward = size["value"], size["value"] + size["backward"]
        step = _training_peak(lambda b: counts[b] * backward,
                              lambda a, b: counts[a] * graph + counts[b] * backward,
                              batches, steps)
        training = P * (SCALAR_ADAM if steps else 2 * DOUBLE) + step   # [0.0] * P, twice
        sampling = sampling_values(config, n) * size["value"] if samples else 0
        model = P * size["parameter"]
    total = model + max(training, sampling)
    return Estimate(path, P, total, step, values)


def _batches(lengths, steps, batch_size):
    """The documents of each step, as far as they differ: step s trains on
    lengths[(s * batch_size + b) % len(lengths)] for b in range(batch_size),
    each step's as a sorted tuple of (positions, documents). Past
    len(lengths) / gcd(len(lengths), batch_size) steps they repeat, so at
    most one more than that is listed."""
    import math
    count = len(lengths)
    period = count // math.gcd(count, batch_size)
    whole, rest = divmod(batch_size, count)
    every = dict.fromkeys(lengths, 0)          # the documents of each whole round
    for m in lengths:
        every[m] += whole
    batches = []
    for s in range(min(max(1, steps), period + 1)):
        documents = dict(every)
        begin = s * batch_size % count
        for b in range(rest):
            documents[lengths[(begin + b) % count]] += 1
        batches.append(tuple(sorted((m, k) for m, k in documents.items() if k)))
    return batches


def _training_peak(alone, after, batches, steps, kept=0):
    """The most a training step's tensors take: alone(b) bytes for the first,
    of documents b, and after(a, b) for one of b after one of a, whose graph
    is still alive; at least `kept`. batches: the steps' documents, as
    _batches lists them (the steps after them repeat their pairs)."""
    if not steps:
        return 0
    most = max(alone(batches[0]), kept)
    for s in range(1, len(batches)):
        most = max(most, after(batches[s - 1], batches[s]))
    return most
