"""Train the demo MLP (8 -> 8 -> 4, tanh) and write ``weights.npz`` as a state dict.

The task: four Gaussian classes in 8 dimensions (seeded), full-batch gradient descent
with softmax cross-entropy, numpy only. Run from the repository root::

    python designs/mlp_demo/train.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_IN, N_HIDDEN, N_OUT = 8, 8, 4
SEED = 2026


def make_data(rng: np.random.Generator, n_per_class: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian clusters with random centres, unit spread."""
    centres = rng.normal(0.0, 1.5, size=(N_OUT, N_IN))
    x = np.concatenate([c + rng.normal(size=(n_per_class, N_IN)) for c in centres])
    y = np.repeat(np.arange(N_OUT), n_per_class)
    return x, y


def train(steps: int = 2000, lr: float = 0.1) -> tuple[dict[str, np.ndarray], float]:
    """Return the state dict and the training accuracy."""
    rng = np.random.default_rng(SEED)
    x, y = make_data(rng)
    w1 = rng.normal(0, 1 / np.sqrt(N_IN), (N_HIDDEN, N_IN))
    b1 = np.zeros(N_HIDDEN)
    w2 = rng.normal(0, 1 / np.sqrt(N_HIDDEN), (N_OUT, N_HIDDEN))
    b2 = np.zeros(N_OUT)
    onehot = np.eye(N_OUT)[y]
    for _ in range(steps):
        h = np.tanh(x @ w1.T + b1)
        logits = h @ w2.T + b2
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(x)
        gh = (g @ w2) * (1 - h**2)
        w2 -= lr * g.T @ h
        b2 -= lr * g.sum(axis=0)
        w1 -= lr * gh.T @ x
        b1 -= lr * gh.sum(axis=0)
    accuracy = float((np.argmax(np.tanh(x @ w1.T + b1) @ w2.T + b2, axis=1) == y).mean())
    state = {"fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2, "fc2.bias": b2}
    return state, accuracy


if __name__ == "__main__":
    state, accuracy = train()
    out = Path(__file__).with_name("weights.npz")
    np.savez(out, **state)
    print(f"wrote {out} (training accuracy {accuracy:.1%})")
