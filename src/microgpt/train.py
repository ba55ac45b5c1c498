"""
microgpt.py's training loop, its Adam optimizer and its sampling loop.

The model is ``microgpt.model.GPT`` (exact, on scalar Values) or
``microgpt.fused.FusedGPT`` (fast), or anything with their interface:
``config``, ``loss(tokens)`` (and, for batches, ``batch_loss(batch)``) with
``.backward()`` and ``.data``,
``optimizer(learning_rate, beta1, beta2, eps_adam)`` with ``.step(step, lr_t)``, ``empty_cache()``
and ``next_token_weights(...)``.
"""
import math


class Adam:
    """microgpt.py's Adam, each formula in its operation order."""

    def __init__(self, params, learning_rate=1e-2, beta1=0.9, beta2=0.95, eps_adam=1e-8):
        self.params = params
        self.learning_rate, self.beta1, self.beta2, self.eps_adam = learning_rate, beta1, beta2, eps_adam
        self.m = [0.0] * len(params)  # first moment buffer
        self.v = [0.0] * len(params)  # second moment buffer

    def step(self, step, lr_t):
        """Update every parameter from its gradient at step `step` (from 0),
        with learning rate lr_t, and zero the gradient."""
        m, v, beta1, beta2, eps_adam = self.m, self.v, self.beta1, self.beta2, self.eps_adam
        for i, p in enumerate(self.params):
            m[i] = beta1 * m[i] + (1 - beta1) * p.grad
            v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
            m_hat = m[i] / (1 - beta1 ** (step + 1))
            v_hat = v[i] / (1 - beta2 ** (step + 1))
            p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps_adam)
            p.grad = 0


def cosine_decay(learning_rate, step, num_steps):
    """microgpt.py's first revision: a cosine from learning_rate down to 0."""
    return learning_rate * 0.5 * (1 + math.cos(math.pi * step / num_steps))


def linear_decay(learning_rate, step, num_steps):
    """microgpt.py's final revision: a straight line from learning_rate down to 0."""
    return learning_rate * (1 - step / num_steps)


SCHEDULES = {"cosine": cosine_decay, "linear": linear_decay}


def train(model, docs, tokenizer, num_steps, learning_rate=1e-2, beta1=0.9, beta2=0.95,
          eps_adam=1e-8, lr_schedule="cosine", start=0, optimizer=None, observe=None,
          batch_size=1):
    """Train on one document per step, in order, with Adam and a decay of
    the learning rate over num_steps (one of SCHEDULES, or a function like
    them); yield each step's loss. The defaults are microgpt.py's first revision.

    With batch_size B > 1, step k trains on the B documents from k * B on
    (wrapping around), on the mean of their losses (model.batch_loss): the
    loss yielded is that mean. B = 1 is microgpt.py's step.

    To carry on a run from step `start`, pass the optimizer it used (made by
    model.optimizer, holding its moments): the steps from start on are those
    the run would have taken. observe, if given, is called as observe(step,
    lr_t) after each step's backward pass, before the update: the gradients
    are there to look at."""
    decay = SCHEDULES[lr_schedule] if isinstance(lr_schedule, str) else lr_schedule
    if optimizer is None:
        optimizer = model.optimizer(learning_rate, beta1, beta2, eps_adam)
    for step in range(start, num_steps):
        if batch_size == 1:
            doc = docs[step % len(docs)]
            tokens = tokenizer.encode(doc)
            loss = model.loss(tokens)
        else:
            batch = [tokenizer.encode(docs[(step * batch_size + b) % len(docs)])
                     for b in range(batch_size)]
            loss = model.batch_loss(batch)
        loss.backward()
        lr_t = decay(learning_rate, step, num_steps)
        if observe is not None:
            observe(step, lr_t)
        optimizer.step(step, lr_t)
        yield loss.data


def sample(model, tokenizer, random, temperature=0.5, prompt=()):
    """One new document: tokens drawn one at a time with random.choices,
    from BOS until BOS comes again or the context is full. A prompt (token
    ids, fewer than block_size) is its beginning: fed in, not drawn."""
    keys, values = model.empty_cache()
    token_id = tokenizer.BOS
    sample = []
    for pos_id in range(model.config.block_size):
        weights = model.next_token_weights(token_id, pos_id, keys, values, temperature)
        if pos_id < len(prompt):
            token_id = prompt[pos_id]
            sample.append(token_id)
            continue
        token_id = random.choices(range(tokenizer.vocab_size), weights=weights)[0]
        if token_id == tokenizer.BOS:
            break
        sample.append(token_id)
    return tokenizer.decode(sample)
