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
import html
import unicodedata

MAX_SAMPLES = 20        # shown (and drawn) at most, whatever the recipe asks: microgpt.py's

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
        if len(samples) > MAX_SAMPLES:
            where = f"the first {MAX_SAMPLES} of the {len(samples):,} samples the run printed"
            samples = samples[:MAX_SAMPLES]
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

    from . import figures
    with figures.fonts(model.vocabulary):       # the figures' characters
        parts = [_header(model, start, steps, end, title)]
        parts.append(_section("loss", "1. Loss", figures.loss(steps, evals, model) if steps
                              else _no_log("loss and learning-rate curves", records)))
        parts.append(_section("samples", "2. Samples", _samples_view(model, samples, where)))
        parts.append(_section("attention", f"3. Attention on “{_html(document)}”",
                              figures.attention(attention, labels, model.config)))
        parts.append(_section("next-token", f"4. Next character after each position of "
                              f"“{_html(document)}”",
                              figures.next_token(logits, labels, model)))
        parts.append(_section("embeddings", "5. Embeddings", figures.embeddings(state, model)))
        parts.append(_section("parameters", "6. Parameters and the run",
                              (figures.parameters(steps) if steps and "rms" in steps[0]
                               else _no_log("parameter and gradient curves", records))
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


