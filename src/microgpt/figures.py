"""
The report's figures (microgpt.viz): matplotlib, each drawn as inline SVG
with its text as text, in the fonts that have its characters.
"""
import contextlib
import io
import math
import re

from .errors import MicrogptWarning, quoted
from .viz import _html, _label, _unseen, softmax


def loss(steps, evals, model):
    """Loss (and its moving average, the held-out loss) and learning rate per step."""
    import numpy as np
    x = np.array([r["step"] for r in steps])
    loss = _floats(r["loss"] for r in steps)
    window = max(1, min(50, len(steps) // 20))
    fig = _figure(8.5, 4.2)
    ax, lr_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(x, loss, color="#9ecae1" if window > 1 else "#08519c", linewidth=0.8,
            label="loss (each step's document)")
    if window > 1:
        average = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(x[window - 1:], average, color="#08519c", linewidth=1.8,
                label=f"moving average of {window}")
    if evals:
        ax.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-",
                color="#d94801", markersize=4, linewidth=1.4, label="held-out loss")
    uniform = math.log(model.config.vocab_size)
    ax.axhline(uniform, color="#999", linewidth=0.8, linestyle=":")
    ax.annotate(f"a uniform guess: ln {model.config.vocab_size}", (0, uniform),
                xycoords=("axes fraction", "data"), xytext=(4, -3),
                textcoords="offset points", ha="left", va="top", fontsize=8, color="#777")
    ax.set_ylabel("loss (nats)")
    ax.legend(loc="upper right", frameon=False)
    ax.grid(alpha=0.25)
    lr_ax.plot(x, _floats(r["lr"] for r in steps), color="#31a354", linewidth=1.4)
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    lr_ax.grid(alpha=0.25)
    return _svg(fig, "Loss and learning rate per step")


def attention(attention, labels, config):
    """Attention weights per layer and head, on one document."""
    import numpy as np
    n_layer, n_head = len(attention), len(attention[0])
    panel = min(2.6, 9.0 / n_head)              # inches per heatmap, labels included
    fig = _figure(panel * n_head + 1.0, panel * n_layer + 0.3)
    axes = np.atleast_2d(fig.subplots(n_layer, n_head, squeeze=False))
    for li in range(n_layer):
        for h in range(n_head):
            ax = axes[li][h]
            image = ax.imshow(attention[li][h], cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"layer {li} head {h}", fontsize=9)
            ticks = range(len(labels))
            ax.set_xticks(ticks, labels, fontsize=7, rotation=90 if len(labels) > 10 else 0)
            ax.set_yticks(ticks, labels, fontsize=7)
            if h == 0:
                ax.set_ylabel("query (position)")
            if li == n_layer - 1:
                ax.set_xlabel("key")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="attention weight")
    return ("<p>Row t: how much position t, reading the character shown, draws on each "
            "position up to it (each row adds up to 1).</p>\n"
            + _svg(fig, "Attention weights per layer and head"))


def next_token(logits, labels, model):
    """The next character's probabilities at each position of one document."""
    import numpy as np
    probs = softmax(logits)
    chars = [_label(c) for c in model.vocabulary] + ["⏎"]
    fig = _figure(8.5, 1.2 + 0.28 * len(labels))
    ax = fig.subplots()
    image = ax.imshow(probs, cmap="Oranges", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(chars)), chars, fontsize=8)
    ax.set_yticks(range(len(labels)), [f"after {c}" for c in labels], fontsize=8)
    ax.set_xlabel("next character (⏎: the end)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="probability")
    rows = []
    for label, row in zip(labels, probs):
        top = np.argsort(-row, kind="stable")[:5]
        cells = "".join(f"<td>{_html(chars[i])} {row[i]:.2f}</td>" for i in top)
        rows.append(f"<tr><th>after {_html(label)}</th>{cells}</tr>")
    table = ("<table><tr><th></th><th colspan=\"5\">five most likely next characters "
             "(temperature 1)</th></tr>\n" + "\n".join(rows) + "</table>")
    return _svg(fig, "Next-character probabilities") + "\n" + table


def embeddings(state, model):
    """The token embeddings by PCA, and how alike the position embeddings are."""
    import numpy as np
    wte = state["wte"]
    centred = wte - wte.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    explained = (s[:2] ** 2).sum() / (s ** 2).sum()
    wpe = state["wpe"]
    norms = np.linalg.norm(wpe, axis=1, keepdims=True)
    similarity = (wpe / np.where(norms == 0, 1, norms)) @ (wpe / np.where(norms == 0, 1, norms)).T
    fig = _figure(9.5, 4.3)
    ax, sim_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    chars = [_label(c) for c in model.vocabulary] + ["BOS"]
    vowels = set("aeiouy")
    for (x, y), c in zip(xy, chars):
        color = "#d94801" if c in vowels else ("#6a51a3" if c == "BOS" else "#08519c")
        ax.scatter([x], [y], s=12, color=color)
        ax.annotate(c, (x, y), xytext=(3, 2), textcoords="offset points", fontsize=9,
                    color=color)
    ax.set_title(f"wte by PCA ({explained:.0%} of the variance)", fontsize=10)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.grid(alpha=0.25)
    image = sim_ax.imshow(similarity, cmap="RdBu_r", vmin=-1, vmax=1)
    sim_ax.set_title("wpe: cosine similarity of positions", fontsize=10)
    sim_ax.set_xlabel("position")
    sim_ax.set_ylabel("position")
    fig.colorbar(image, ax=sim_ax, shrink=0.8)
    return ("<p>Left: each character's embedding, projected on the two directions along "
            "which the embeddings differ most (vowels orange). Right: how alike the "
            "learned position embeddings are.</p>\n" + _svg(fig, "Token and position "
                                                           "embeddings"))


def parameters(steps):
    """Each matrix's parameter and gradient RMS per step."""
    import numpy as np
    x = [r["step"] for r in steps]
    names = list(steps[0]["rms"])
    fig = _figure(9.5, 3.8)
    data_ax, grad_ax = fig.subplots(1, 2, sharex=True)
    colors = _colors(len(names))
    for name, color in zip(names, colors):
        data_ax.plot(x, _floats(r["rms"].get(name, [None])[0] for r in steps), color=color,
                     linewidth=1.2, label=name)
        grads = _floats(r["rms"].get(name, [None, None])[1] for r in steps)
        grad_ax.plot(x, np.where(grads > 0, grads, np.nan), color=color, linewidth=0.8)
    data_ax.set_title("parameter RMS", fontsize=10)
    grad_ax.set_title("gradient RMS (before each update)", fontsize=10)
    grad_ax.set_yscale("log")
    for ax in (data_ax, grad_ax):
        ax.set_xlabel("step")
        ax.grid(alpha=0.25)
    fig.legend(*data_ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7,
               frameon=False, ncol=2 if len(names) > 18 else 1)
    return _svg(fig, "Parameter and gradient RMS per matrix")



# matplotlib, made to write SVG for the page ------------------------------------------

@contextlib.contextmanager
def fonts(text):
    """While the figures are made: fonts that have the text's characters
    (DejaVu Sans, then whichever installed font has those it lacks), and
    matplotlib's warning per missing glyph left out; afterwards one
    MicrogptWarning names the characters no installed font has."""
    import warnings

    import matplotlib
    families, missing = _families(text)
    with matplotlib.rc_context({"font.family": families + ["sans-serif"]}), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        yield
    if missing:
        shown = quoted("".join(sorted(missing)), 40)
        warnings.warn(f"no installed font has {len(missing)} of the text's characters "
                      f"({shown}): the figures were laid out without them, and a browser "
                      "shows them with fonts of its own", MicrogptWarning, stacklevel=3)


def _families(text):
    """(the font families to lay text out with, the characters no installed
    font has). matplotlib's Last Resort font, if it has one, comes last: its
    glyphs are boxes, but boxes of the right size."""
    from matplotlib import font_manager
    wanted = {c for c in text if not _unseen(c)}
    families, last = ["DejaVu Sans"], []
    missing = wanted - _charmap(font_manager.findfont("DejaVu Sans"))
    for entry in font_manager.fontManager.ttflist if missing else ():
        if entry.name.startswith("Last Resort"):
            last = [entry.name]
            continue
        has = missing & _charmap(entry.fname)
        if has and entry.name not in families:
            families.append(entry.name)
            missing -= has
    return families + last, missing


_CHARMAPS = {}


def _charmap(path):
    """The characters the font file at path has glyphs for."""
    if path not in _CHARMAPS:
        from matplotlib.ft2font import FT2Font
        try:
            _CHARMAPS[path] = {chr(code) for code in FT2Font(path).get_charmap()}
        except (OSError, RuntimeError, ValueError):    # a font FreeType cannot read
            _CHARMAPS[path] = set()
    return _CHARMAPS[path]


def _figure(width, height):
    """A matplotlib Figure of its own (no pyplot: nothing global changes)."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig, label):
    """The figure as an inline <svg>: text as text, no XML prologue, no
    metadata (the page must name nothing outside itself)."""
    import matplotlib
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "microgpt"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_html(label, attribute=True)}" ', 1)
    return f"<figure>{svg}</figure>"


def _floats(values):
    """A float array of values, None (a number that was not finite) as NaN."""
    import numpy as np
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _colors(n):
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
