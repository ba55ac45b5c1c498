"""
What a run learned, on one page: the HTML report of --report and microgpt-report.

    import microgpt
    from microgpt import runlog, viz
    model = microgpt.load("m.safetensors")
    html = viz.report(model, runlog.read("run.jsonl"), inspect="emma")
    viz.save("report.html", html)

The page is one self-contained HTML file: the figures are inline SVG drawn
by matplotlib (the optional extra ``microgpt[report]``), the samples are
HTML; nothing is loaded from anywhere, and it reads the same without
JavaScript. Its views:

1. loss per step (and its moving average), the learning rate, and the
   held-out loss when the run had --val-docs;
2. the samples, each character shaded by the probability the model gave it;
3. attention, per layer and head, on one document (inspect; by default the
   first sample): which earlier characters each position looks at;
4. the next character's probabilities at each position of that document;
5. the token embeddings (wte) in 2-D by PCA, and how alike the position
   embeddings (wpe) are;
6. each matrix's parameter and gradient RMS over training, and the run's
   settings and timing.

Views 1 and 6 come from the run's log (microgpt.runlog); without one the
page says so. The attention and the probabilities are computed by
``forward``, microgpt.py's forward pass in numpy over the model's
state_dict, whose logits the tests compare with the model's own.
"""
import contextlib
import html
import io
import math
import re
import unicodedata

from .errors import MicrogptWarning, quoted

MAX_SAMPLES = 100       # drawn for the page at most, whatever the recipe asks

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.lead { color: #555; margin-top: 0; } .note { color: #777; font-style: italic; }
figure { margin: 0.5em 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 0.15em 0.7em; text-align: left; border-bottom: 1px solid #eee; }
th { font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.samples { font-family: Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 1.05em;
           columns: 4 12em; }
.samples div { margin: 0.1em 0; }
.samples .n { color: #999; font-size: 0.8em; display: inline-block; width: 1.8em;
              text-align: right; margin-right: 0.4em; }
.samples span.c { padding: 0.05em 0.08em; border-radius: 2px; }
.esc { font-size: 0.75em; border: 1px solid #bbb; border-radius: 2px; padding: 0 0.1em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
        gap: 1em; }
"""


def forward(state_dict, config, tokens):
    """microgpt.py's forward pass over a whole document at once, in numpy
    float64: the logits after each token ([T, vocab_size]) and the attention
    weights (attention[layer][head] is [T, T], row t over keys 0..t)."""
    import numpy as np
    sd = {name: np.asarray(w, dtype=np.float64) for name, w in state_dict.items()}
    T = len(tokens)
    head_dim = config.n_embd // config.n_head

    def rmsnorm(x):
        return x * (np.mean(x * x, axis=-1, keepdims=True) + 1e-5) ** -0.5

    x = rmsnorm(sd['wte'][list(tokens)] + sd['wpe'][:T])
    attention = []
    causal = np.tril(np.ones((T, T), dtype=bool))
    for li in range(config.n_layer):
        x_residual = x
        x = rmsnorm(x)
        q, k, v = (x @ sd[f'layer{li}.attn_{m}'].T for m in ("wq", "wk", "wv"))
        heads, outs = [], []
        for h in range(config.n_head):
            hs = slice(h * head_dim, (h + 1) * head_dim)
            logits = np.where(causal, q[:, hs] @ k[:, hs].T / head_dim ** 0.5, -np.inf)
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            heads.append(weights)
            outs.append(weights @ v[:, hs])
        attention.append(heads)
        x = np.concatenate(outs, axis=1) @ sd[f'layer{li}.attn_wo'].T + x_residual
        x_residual = x
        x = np.maximum(rmsnorm(x) @ sd[f'layer{li}.mlp_fc1'].T, 0.0)
        if config.activation == "relu2":
            x = x ** 2
        x = x @ sd[f'layer{li}.mlp_fc2'].T + x_residual
    return x @ sd['lm_head'].T, attention


def softmax(logits, temperature=1.0):
    import numpy as np
    z = np.asarray(logits, dtype=np.float64) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# The page ------------------------------------------------------------------------

def report(model, records=None, inspect=None, title=None):
    """The HTML page for a Model (microgpt.load, or a Run's model) and its
    run's log records (microgpt.runlog.read; None: no log), inspecting the
    document `inspect` (default: the first sample)."""
    records = list(records or [])
    steps = [r for r in records if r.get("kind") == "step"]
    evals = [r for r in records if r.get("kind") == "eval" and r.get("val_loss") is not None]
    start = next((r for r in records if r.get("kind") == "start"), None)
    end = next((r for r in reversed(records) if r.get("kind") == "end"), None)
    if end is not None and end.get("samples"):
        samples, where = end["samples"], "the samples the run printed"
    else:
        count = min(model.recipe.num_samples, MAX_SAMPLES)
        samples, where = model.sample(count), "samples drawn from the saved model"
    if inspect is None:
        inspect = next((s for s in samples if s), model.vocabulary[:1])
    document = inspect[:model.config.block_size - 1]
    tokens = model.tokenizer.encode(document)[:-1]
    state = model.state_dict
    logits, attention = forward(state, model.config, tokens)
    labels = ["BOS"] + [_label(c) for c in document]

    with _fonts(model.vocabulary):      # the figures' characters
        parts = [_header(model, start, steps, end, title)]
        parts.append(_section("loss", "1. Loss", _loss_view(steps, evals, model, records)))
        parts.append(_section("samples", "2. Samples", _samples_view(model, samples, where)))
        parts.append(_section("attention", f"3. Attention on “{_html(document)}”",
                              _attention_view(attention, labels, model.config)))
        parts.append(_section("next-token", f"4. Next character after each position of "
                              f"“{_html(document)}”",
                              _next_token_view(logits, labels, model)))
        parts.append(_section("embeddings", "5. Embeddings", _embedding_view(state, model)))
        parts.append(_section("parameters", "6. Parameters and the run",
                              _parameter_view(steps, records)
                              + _settings_table(model, start, steps, end)))
    page_title = _html(title or "microgpt run report", attribute=True)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{page_title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


def save(path, page):
    """Write the page to path atomically."""
    from .files import write_atomically
    write_atomically(path, page.encode("utf-8"))


def _unseen(char):
    """Whether a character shows nothing, or moves or hides what is around
    it, where a page or a figure shows it: controls, format characters (bidi
    overrides), line and paragraph separators, noncharacters and unassigned."""
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")


def _label(char):
    """A character as a figure shows it: itself, or U+XXXX if it is unseen."""
    return f"U+{ord(char):04X}" if _unseen(char) else char


def _html(text, attribute=False):
    """text as HTML: escaped, and each unseen character shown as its code
    point (a marked U+XXXX; in an attribute, plain text)."""
    text = str(text)
    if not any(map(_unseen, text)):
        return html.escape(text)
    marked = '<span class="esc">U+{:04X}</span>' if not attribute else "U+{:04X}"
    return "".join(marked.format(ord(c)) if _unseen(c) else html.escape(c) for c in text)


def _section(ident, heading, body):
    return f'<section id="{ident}">\n<h2>{heading}</h2>\n{body}\n</section>'


def _header(model, start, steps, end, title):
    recipe = model.recipe
    words = [f"recipe {_html(recipe.name)}", f"{model.num_params:,} parameters",
             f"{model.config.n_layer} layer{'s' * (model.config.n_layer > 1)}",
             f"vocabulary of {model.config.vocab_size} tokens"]
    if steps:
        loss = steps[-1]["loss"]
        words.append(f"{steps[-1]['step']} steps, final loss "
                     + ("not a number" if loss is None else f"{loss:.4f}"))
    return (f"<h1>{_html(title or 'microgpt run report')}</h1>\n"
            f"<p class=\"lead\">{' · '.join(words)}</p>")


def _no_log(what, records=None):
    if records:
        return f'<p class="note">The run trained no steps: there are no {what} to show.</p>'
    return (f'<p class="note">No log: {what} come from the run\'s log (microgpt-train '
            '--log run.jsonl, then microgpt-report --log run.jsonl).</p>')


def _loss_view(steps, evals, model, records):
    if not steps:
        return _no_log("loss and learning-rate curves", records)
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


def _samples_view(model, samples, where):
    import numpy as np
    T = model.recipe.temperature
    rows = []
    for i, text in enumerate(samples, 1):
        shown = text[:model.config.block_size]
        probs = softmax(np.array(model.logits(shown)), T)
        targets = list(zip(shown, model.tokenizer.encode(shown)[1:]))
        if len(shown) < model.config.block_size:        # it ended: BOS was drawn
            targets.append(("⏎", model.tokenizer.BOS))
        spans = []
        for pos, (char, token) in enumerate(targets):
            p = float(probs[pos][token])
            style = f"background: rgba(8, 81, 156, {0.08 + 0.72 * p:.3f});" + \
                (" color: #fff;" if p > 0.55 else "")
            title = f"{'end' if char == '⏎' else repr(char)}: p = {p:.3f}"
            spans.append(f'<span class="c" style="{style}" title="{_html(title, attribute=True)}">'
                         f'{_html(char)}</span>')
        rows.append(f'<div><span class="n">{i}</span>{"".join(spans)}</div>')
    return (f"<p>{_html(where.capitalize())}, at temperature {T:g}. Each character is "
            "shaded by the probability the model gave it when it was drawn (darker: surer); "
            "⏎ is the end of the name.</p>\n"
            f'<div class="samples">\n' + "\n".join(rows) + "\n</div>")


def _attention_view(attention, labels, config):
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


def _next_token_view(logits, labels, model):
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


def _embedding_view(state, model):
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


def _parameter_view(steps, records):
    if not steps or "rms" not in steps[0]:
        return _no_log("parameter and gradient curves", records)
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


def _settings_table(model, start, steps, end):
    rows = [("recipe", model.recipe.name), ("path", start.get("path") if start else None)]
    rows += [(name, repr(value) if isinstance(value, str) else value)
             for name, value in model.recipe.settings().items()
             if name not in ("step_end", "inference_header")]
    rows += [("vocabulary", repr(model.vocabulary)), ("parameters", f"{model.num_params:,}")]
    if start:
        rows += [("documents", f"{start.get('num_docs', 0):,}"),
                 ("held-out documents", start.get("val_docs", 0)),
                 ("text", start.get("text_name"))]
    if steps:
        seconds = steps[-1].get("elapsed")
        trained = steps[-1]["step"] - steps[0]["step"] + 1
        if seconds:
            rows += [("training time", f"{seconds:.3f} s"),
                     ("per step", f"{seconds / trained * 1e6:.1f} µs")]
    body = "\n".join(f"<tr><th>{_html(str(k))}</th><td>{_html(str(v))}</td></tr>"
                     for k, v in rows if v is not None)
    return f"\n<h3>Settings</h3>\n<table>\n{body}\n</table>"


# matplotlib, made to write SVG for this page ------------------------------------------

@contextlib.contextmanager
def _fonts(text):
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
