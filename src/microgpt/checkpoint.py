"""
Checkpoints: a training run on disk, in the safetensors format.

A checkpoint holds everything needed to carry a run on exactly as if it had
never stopped, and nothing that runs code when it is read (safetensors: a
JSON header and raw little-endian arrays; no pickle). PyTorch, numpy and
any safetensors reader can open it.

Tensors (all float64 but the generator's words):

    wte, wpe, lm_head, layer{i}.attn_wq ... layer{i}.mlp_fc2
                        the parameters, [nout, nin], microgpt.py's state_dict
    adam.m.<name>, adam.v.<name>
                        Adam's first and second moments, shaped as the parameter
    random.mt           the generator's 624 MT19937 words (uint32)
    random.index        its position in them (int64, a scalar)
    random.gauss_next   gauss()'s pending value: [] if none, else [x]

Metadata (strings): ``format`` ("microgpt-checkpoint"), ``format_version``,
``microgpt_version``, ``recipe`` (its name), every setting of the recipe
under its own name as JSON (``n_embd``: "16", ``activation``: "\\"relu2\\"",
floats as their repr, which reads back exactly), ``vocabulary`` (the
characters, in token order), ``step`` (steps done), ``text_name`` and
``text_sha256`` (the training text's file and the SHA-256 of its bytes),
``val_docs`` (documents held out of training, the last of the shuffled ones).

``save`` writes atomically (microgpt.files); ``load`` checks everything it
reads and raises CheckpointError, one line naming the file, for anything
that is not a checkpoint this version can carry on.
"""
import json
import math
import os
import sys
from array import array

from .errors import CheckpointError, WriteError, quoted, shortened

FORMAT = "microgpt-checkpoint"
FORMAT_VERSION = 1
_MT_WORDS = 624
# Recipe settings added since format version 1, and the value a checkpoint
# without one was trained with.
_ADDED = {"batch_size": 1}


class Checkpoint:
    """A training run's state, in plain Python values.

    recipe        microgpt.recipe.Recipe: the model's and the run's settings
    vocabulary    the characters, in token order (BOS is the next id)
    params        every parameter in microgpt.py's order (state_dict's
                  matrices one after another, rows in order), as array('d')
    adam_m, adam_v   Adam's moments, in the same order, as array('d')
    random_state  the generator's state, as random.Random.getstate() gives it
    step          steps done (the next step trains docs[step % len(docs)])
    text_name, text_sha256   the training text's name and the SHA-256 of its bytes
    val_docs      how many documents were held out of training (the last ones)
    path          the file load() read it from (None if not read from one)
    """

    def __init__(self, recipe, vocabulary, params, adam_m, adam_v, random_state, step,
                 text_name, text_sha256, val_docs=0, microgpt_version=None):
        from . import __version__
        self.recipe, self.vocabulary = recipe, vocabulary
        self.params, self.adam_m, self.adam_v = _doubles(params), _doubles(adam_m), \
            _doubles(adam_v)
        from .files import name_of
        self.random_state, self.step = random_state, step
        self.text_name, self.text_sha256, self.val_docs = name_of(text_name), text_sha256, \
            val_docs
        self.microgpt_version = microgpt_version or __version__
        self.path = None                # the file it was read from, if any

    def config(self):
        """The model's hyperparameters (microgpt.model.Config)."""
        return self.recipe.config(len(self.vocabulary) + 1)


def shapes(config):
    """{name: (nout, nin)} of microgpt.py's state_dict, in its order (Config.layout)."""
    return {name: (nout, nin) for name, nout, nin, _ in config.layout()}


# Writing ----------------------------------------------------------------------

def to_bytes(checkpoint):
    """The checkpoint as the bytes of a safetensors file."""
    import numpy as np
    from safetensors.numpy import save

    tensors = {}
    for prefix, flat in (("", checkpoint.params), ("adam.m.", checkpoint.adam_m),
                         ("adam.v.", checkpoint.adam_v)):
        flat = np.frombuffer(flat, dtype=np.float64)
        for name, (offset, nout, nin) in _layout(checkpoint.config()).items():
            tensors[prefix + name] = flat[offset:offset + nout * nin].reshape(nout, nin)
    version, internal, gauss_next = checkpoint.random_state
    tensors["random.mt"] = np.array(internal[:_MT_WORDS], dtype=np.uint32)
    tensors["random.index"] = np.array(internal[_MT_WORDS], dtype=np.int64)
    tensors["random.gauss_next"] = np.array([] if gauss_next is None else [gauss_next],
                                            dtype=np.float64)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "microgpt_version": checkpoint.microgpt_version,
        "recipe": checkpoint.recipe.name,
        **{field: json.dumps(value) for field, value in checkpoint.recipe.settings().items()},
        "vocabulary": checkpoint.vocabulary,
        "step": str(checkpoint.step),
        "text_name": checkpoint.text_name,
        "text_sha256": checkpoint.text_sha256,
        "val_docs": str(checkpoint.val_docs),
    }
    return _sorted_metadata(save(tensors, metadata=metadata))


def _sorted_metadata(data):
    """safetensors' bytes with the header's metadata in sorted order:
    safetensors writes it in the order of a hash table, which differs from
    one process to the next, and the same run should make the same bytes."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)             # safetensors' padding: the data stays aligned
    return len(text).to_bytes(8, "little") + text + data[8 + length:]


def _layout(config):
    """{name: (offset, nout, nin)}: where each matrix is in the flat order."""
    layout, offset = {}, 0
    for name, (nout, nin) in shapes(config).items():
        layout[name] = (offset, nout, nin)
        offset += nout * nin
    return layout


def save(path, checkpoint):
    """Write the checkpoint to path atomically: the old file or the new one
    stays, whatever happens. WriteError (an OSError) if it cannot be written."""
    from .files import write_atomically
    data = to_bytes(checkpoint)
    try:
        write_atomically(path, data)
    except WriteError as exc:
        raise WriteError(f"cannot save the checkpoint: {exc}") from None


# Reading ----------------------------------------------------------------------

def load(path):
    """The Checkpoint in the file at path; CheckpointError if it is not one."""
    path = os.fspath(path)
    data = _read(path)                  # its errors name the file
    try:
        checkpoint = from_bytes(data)
    except CheckpointError as exc:      # what is wrong with the bytes: the file added
        raise CheckpointError(f"{path}: {exc}") from None
    checkpoint.path = path
    return checkpoint


# safetensors' own bound on a header; ours are a few kB
MAX_HEADER = 100_000_000


def _read(path):
    """The bytes of the safetensors file at path, read only as far as its
    header says they go: a regular file whose size is the header's 8 bytes,
    the header and the tensors' data it describes; CheckpointError if not, before
    reading more than the header (a device, or a huge file, never is)."""
    from .files import ReadError, open_for_reading
    try:
        f = open_for_reading(path, "a checkpoint")
    except ReadError as exc:
        raise CheckpointError(str(exc)) from None
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            length = int.from_bytes(prefix, "little")
            if len(prefix) < 8 or length > min(MAX_HEADER, size - 8):
                raise CheckpointError(f"not a safetensors file ({size} bytes, and a header "
                                      "that is not there)")
            header = f.read(length)
            end = _data_end(header)
            if 8 + length + end != size:
                raise CheckpointError(f"not a safetensors file (it is {size:,} bytes; its header "
                                      f"says {8 + length + end:,})")
            return prefix + header + f.read(end)
        except OSError as exc:
            raise CheckpointError(f"{path}: {exc.strerror or exc}") from None
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None


def _data_end(header):
    """Where the tensors' data ends, by a safetensors header's offsets."""
    try:
        tensors = json.loads(header)
        ends = [spec["data_offsets"][1] for name, spec in tensors.items()
                if name != "__metadata__"]
    except (ValueError, RecursionError, AttributeError, TypeError, KeyError, IndexError):
        raise CheckpointError("not a safetensors file (its header is not a JSON object of "
                              "tensors)") from None
    if not all(isinstance(end, int) and end >= 0 for end in ends):
        raise CheckpointError("not a safetensors file (its header's offsets are not sizes)")
    return max(ends, default=0)


# safetensors' names of the element types used here, and their array typecodes
_DTYPES = {"float64": ("F64", "d"), "int64": ("I64", "q"),
           "uint32": ("U32", "I" if array("I").itemsize == 4 else "L")}


def from_bytes(data):
    """The Checkpoint of a safetensors file's bytes; CheckpointError (saying
    what is wrong, without a file's name) if it is not one.
    (Read with safetensors' own parser, without numpy: sampling from a
    checkpoint starts fast.)"""
    from safetensors import SafetensorError, deserialize

    if len(data) < 8:
        raise CheckpointError(f"not a safetensors file ({len(data)} bytes)")
    try:
        tensors = {name: spec for name, spec in deserialize(bytes(data))}
    except (SafetensorError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"not a safetensors file ({_first_line(exc)})") from None
    # the metadata, which deserialize does not return, is in the header it has
    # just checked: 8 bytes of length, then JSON
    try:
        header = json.loads(bytes(data[8:8 + int.from_bytes(data[:8], "little")]))
        metadata = header.get("__metadata__") or {}
    except (ValueError, RecursionError, AttributeError):
        raise CheckpointError("not a safetensors file (its header is not a JSON object)") from None
    if not isinstance(metadata, dict) or \
            not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError("not a safetensors file (its metadata is not strings)")
    if metadata.get("format") != FORMAT:
        raise CheckpointError("a safetensors file, but not a microgpt checkpoint "
                              f"(its metadata has no format {FORMAT!r})")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"checkpoint format version {quoted(metadata.get('format_version'))}; this "
            f"microgpt reads version {FORMAT_VERSION} (a newer microgpt wrote it?)")
    recipe = _recipe(metadata)
    vocabulary = _text(metadata, "vocabulary")
    if not vocabulary or list(vocabulary) != sorted(set(vocabulary)):
        raise CheckpointError("the vocabulary must be distinct characters in sorted order, "
                              f"not {quoted(vocabulary)}")
    step = _integer(metadata, "step")
    if not 0 <= step <= recipe.num_steps:
        raise CheckpointError(f"step {step} is outside 0 to num_steps ({recipe.num_steps})")
    sha256 = _text(metadata, "text_sha256")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise CheckpointError(f"text_sha256 is not a SHA-256 in hex: {quoted(sha256)}")

    if 6 * recipe.n_layer > len(tensors):       # a bound before counting them
        raise CheckpointError(f"{len(tensors)} tensors are too few for n_layer {recipe.n_layer}")
    config = recipe.config(len(vocabulary) + 1)
    expected = {}
    for name, shape in shapes(config).items():
        for key in (name, "adam.m." + name, "adam.v." + name):
            expected[key] = ("float64", shape)
    expected["random.mt"] = ("uint32", (_MT_WORDS,))
    expected["random.index"] = ("int64", ())
    expected["random.gauss_next"] = ("float64", None)       # (0,) or (1,)
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(f"unexpected tensor {quoted(unexpected[0])} (for the settings "
                              "in its metadata)")
    arrays = {}
    for key, (dtype, shape) in expected.items():
        if key not in tensors:
            raise CheckpointError(f"tensor {key!r} is missing")
        spec = tensors[key]
        code, typecode = _DTYPES[dtype]
        if spec["dtype"].upper() != code:
            raise CheckpointError(f"tensor {key!r} is {shortened(_dtype_name(spec['dtype']))}, "
                                  f"not {dtype}")
        if shape is not None and tuple(spec["shape"]) != shape:
            raise CheckpointError(f"tensor {key!r} has shape "
                                  f"{shortened(str(list(spec['shape'])))}, not {list(shape)}")
        values = array(typecode)
        values.frombytes(spec["data"])          # deserialize checked the length
        if sys.byteorder != "little":
            values.byteswap()
        if dtype == "float64" and not all(map(math.isfinite, values)):
            raise CheckpointError(f"tensor {key!r} holds a NaN or an infinity")
        if key.startswith("adam.v.") and any(x < 0 for x in values):
            raise CheckpointError(f"tensor {key!r} holds a negative number (a mean of squares)")
        arrays[key] = values

    gauss = arrays["random.gauss_next"]
    if len(gauss) > 1 or tensors["random.gauss_next"]["shape"] not in ([0], [1]):
        raise CheckpointError(f"tensor 'random.gauss_next' has shape "
                              f"{list(tensors['random.gauss_next']['shape'])}, not [0] or [1]")
    index = arrays["random.index"][0]
    if not 0 <= index <= _MT_WORDS:
        raise CheckpointError(f"random.index {index} is outside 0 to {_MT_WORDS}")
    mt = arrays["random.mt"]
    if not (mt[0] & 0x80000000 or any(mt[1:])):
        # MT19937 uses the top bit of the first word and all of the others:
        # with those all 0 it draws 0 for ever, a state no seed reaches
        raise CheckpointError("random.mt is not a state of MT19937 (its 19,937 bits are all 0)")
    random_state = (3, tuple(arrays["random.mt"]) + (index,), gauss[0] if gauss else None)

    names = shapes(config)
    flat = lambda prefix: array("d", b"".join(arrays[prefix + name] for name in names))
    return Checkpoint(
        recipe, vocabulary, flat(""), flat("adam.m."), flat("adam.v."),
        random_state=random_state, step=step,
        text_name=_text(metadata, "text_name"), text_sha256=sha256,
        val_docs=_integer(metadata, "val_docs"),
        microgpt_version=_text(metadata, "microgpt_version"))


def _dtype_name(code):
    """safetensors' name of an element type, as numpy calls it where it can."""
    names = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
             "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
             "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool"}
    return names.get(str(code).upper(), str(code))


def _recipe(metadata):
    """The Recipe of the metadata's name and settings."""
    from .recipe import RECIPES, Recipe
    name = _text(metadata, "recipe")
    settings = {}
    for field in Recipe.FIELDS:
        if field not in metadata and field in _ADDED:     # written before the setting was
            settings[field] = _ADDED[field]
            continue
        if field not in metadata:
            raise CheckpointError(f"the metadata has no {field!r}")
        try:
            settings[field] = json.loads(metadata[field])
        except (ValueError, RecursionError):
            raise CheckpointError(f"the metadata's {field!r} is not JSON: "
                                  f"{quoted(metadata[field])}") from None
    known = RECIPES.get(name)
    summary = known.summary if known is not None and known.settings() == settings else \
        "read from a checkpoint"
    try:
        return Recipe(name, summary, **settings)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


def _text(metadata, key):
    if key not in metadata:
        raise CheckpointError(f"the metadata has no {key!r}")
    return metadata[key]


def _integer(metadata, key):
    text = _text(metadata, key)
    if not (text.isascii() and text.isdigit()):
        raise CheckpointError(f"the metadata's {key!r} is not a whole number: {quoted(text)}")
    return int(text)


def _doubles(values):
    """values as an array('d') of its own."""
    result = array("d")
    if isinstance(values, (bytes, bytearray, memoryview, array)):
        result.frombytes(memoryview(values).cast("B"))
    else:
        result.extend(values)
    return result


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
