"""Interpolated Kneser-Ney n-gram language model, vectorized with numpy.

Model (Chen & Goodman 1998, "interpolated modified Kneser-Ney"):

  P_k(w | c) = max(c_k(cw) - D_k(c_k(cw)), 0) / sum_v c_k(cv)  +  gamma_k(c) * P_{k-1}(w | c')

where c' drops the oldest token of c, c_n are raw counts at the top order and c_k (k < n) are
continuation counts N1+(. c w) (how many distinct tokens precede `cw`), and P_0 is uniform over the
vocabulary, so every token has non-zero probability. `gamma_k(c)` is whatever mass the kept, discounted
children of `c` leave over, so each P_k(. | c) sums to one exactly. A context never seen in training
has gamma = 1 (pure back-off to the shorter context).

Discounts: `discount='modified'` estimates three discounts per order (for counts 1, 2, 3+) from that
order's count-of-counts n1..n4 (D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3,
Y = n1 / (n1 + 2 n2)); `discount='fixed'` uses one absolute discount D (0.75 by default) everywhere.

Count cut-off: n-grams of order >= 2 seen fewer than `min_count` times are not stored; their mass
goes to the back-off weight of their context (as SRILM/KenLM pruning). Discounts and continuation
counts are computed before pruning.

Storage is ARPA-like: per order a sorted int64 key array (key = id of the (k-1)-gram prefix in the
order k-1 table * V + last token), the discounted probability term per entry and, for orders < n,
the back-off weight gamma of the entry used as a context. Order 1 stores all V tokens.
`num_params` = number of stored n-gram entries (each holds a probability and, below the top order,
a back-off weight). Keys stay small (< #entries * V) for any n, so there is no limit on n or V
beyond int64.
"""

import dataclasses

import numpy as np

from scaling import errors

_EVAL_CHUNK = 1 << 20  # positions per chunk when scoring a long stream; bounds peak memory.


@dataclasses.dataclass
class KneserNeyLM:
  n: int
  vocab_size: int
  keys: list[np.ndarray]  # keys[k-1]: sorted int64 keys of the stored k-grams (order 1: arange(V))
  alpha: list[np.ndarray]  # alpha[k-1]: float64 discounted probability term per stored k-gram
  gamma: list[np.ndarray]  # gamma[k]: back-off weight of each stored k-gram as a context; gamma[0]: shape (1,)
  discounts: list[tuple[float, float, float]]  # (D1, D2, D3+) per order 1..n

  @property
  def num_params(self) -> int:
    return int(sum(len(k) for k in self.keys))

  @property
  def entries_per_order(self) -> list[int]:
    return [int(len(k)) for k in self.keys]

  def log_probs(self, x_BxL: np.ndarray) -> np.ndarray:
    """log P(x[:, j] | x[:, max(0, j-n+1):j]) for every position: shape BxL, natural log.

    Each row is scored as its own stream (position 0 is predicted from the empty context).
    """
    V = self.vocab_size
    x = np.asarray(x_BxL, dtype=np.int64)
    if x.ndim != 2:
      raise errors.ConfigError(f"x_BxL: expected a 2-D token array, got shape {x.shape}")
    if x.size and (x.min() < 0 or x.max() >= V):
      raise errors.ConfigError(f"x_BxL: token ids must be in [0, {V}), got [{x.min()}, {x.max()}]")
    p = self.alpha[0][x] + self.gamma[0][0] / V
    ids_prev = x  # id of the (k-1)-gram ending at each position in the order k-1 table, -1 if absent
    for k in range(2, self.n + 1):
      ctx = np.full_like(x, -1)
      ctx[:, 1:] = ids_prev[:, :-1]
      seen = ctx >= 0
      key = np.where(seen, ctx * V + x, -1)
      keys = self.keys[k - 1]
      if len(keys) == 0:  # nothing stored at this order (or above): P_k = P_{k-1}
        break
      pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
      hit = seen & (keys[pos] == key)
      p = np.where(seen, self.gamma[k - 1][np.maximum(ctx, 0)], 1.0) * p
      p += np.where(hit, self.alpha[k - 1][pos], 0.0)
      ids_prev = np.where(hit, pos, -1)
    return np.log(p)

  def next_token_probs(self, context: np.ndarray) -> np.ndarray:
    """P(w | context) for every w in the vocabulary: shape (V,)."""
    c = np.asarray(context, dtype=np.int64)[-(self.n - 1):] if self.n > 1 else np.zeros(0, np.int64)
    x_VxL = np.concatenate([np.broadcast_to(c, (self.vocab_size, len(c))),
                            np.arange(self.vocab_size)[:, None]], axis=1)
    return np.exp(self.log_probs(x_VxL)[:, -1])

  def cross_entropy(self, tokens: np.ndarray) -> float:
    """Mean negative log-likelihood in nats/token of a token stream (first token: empty context)."""
    t = np.asarray(tokens, dtype=np.int64)
    if len(t) == 0:
      raise errors.ConfigError("tokens: cannot score an empty stream")
    h = self.n - 1
    total = 0.0
    for s in range(0, len(t), _EVAL_CHUNK):
      lo = max(0, s - h)  # carry the n-1 previous tokens as context across chunk borders
      lp = self.log_probs(t[None, lo:s + _EVAL_CHUNK])[0, s - lo:]
      total -= lp.sum()
    return total / len(t)


def _modified_discounts(counts: np.ndarray) -> tuple[float, float, float]:
  nc = np.bincount(np.minimum(counts, 5).astype(np.int64), minlength=6)[1:5].astype(np.float64)
  n1, n2, n3, n4 = nc
  if n1 == 0 or n2 == 0 or n3 == 0:  # too little data for the estimate: fall back to D = 0.75 ...
    return (0.75, 0.75, 0.75)
  y = n1 / (n1 + 2 * n2)
  d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
  # ... and keep each discount in (0, count] so no kept n-gram gets a negative or zero term.
  return tuple(float(np.clip(di, 1e-3, j)) for j, di in zip((1, 2, 3), d))


def _discount(counts: np.ndarray, d: tuple[float, float, float]) -> np.ndarray:
  return np.select([counts == 0, counts == 1, counts == 2], [0.0, d[0], d[1]], d[2])


def _count(keys: np.ndarray, key_space: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """np.unique(keys, return_inverse=True, return_counts=True) for keys in [0, key_space)."""
  if key_space <= 2 * len(keys) + (1 << 20):
    # Small key space (low orders): one O(N) bincount instead of an O(N log N) sort, ~10x faster.
    cnt = np.bincount(keys, minlength=key_space)
    uniq = np.flatnonzero(cnt)
    rank = np.zeros(key_space, np.int64)
    rank[uniq] = np.arange(len(uniq))
    return uniq, rank[keys], cnt[uniq]
  return np.unique(keys, return_inverse=True, return_counts=True)


def fit(tokens: np.ndarray, vocab_size: int, n: int, *, min_count: int = 1,
        discount: str = "modified", fixed_discount: float = 0.75) -> KneserNeyLM:
  """Counts all 1..n-grams of a token stream and builds the interpolated Kneser-Ney model."""
  if n < 1:
    raise errors.ConfigError(f"n: n-gram order must be >= 1, got {n}")
  if min_count < 1:
    raise errors.ConfigError(f"min_count: must be >= 1, got {min_count}")
  if discount not in ("modified", "fixed"):
    raise errors.ConfigError(f"discount: must be 'modified' or 'fixed', got {discount!r}")
  if not 0 < fixed_discount <= 1:
    raise errors.ConfigError(f"fixed_discount: must be in (0, 1], got {fixed_discount}")
  V = int(vocab_size)
  t = np.asarray(tokens, dtype=np.int64)
  if t.ndim != 1:
    raise errors.ConfigError(f"tokens: expected a 1-D token stream, got shape {t.shape}")
  if len(t) and (t.min() < 0 or t.max() >= V):
    raise errors.ConfigError(f"tokens: ids must be in [0, {V}), got [{t.min()}, {t.max()}]")

  # Unpruned tables. Order k: ids_k[j] = table id of the k-gram starting at j. Its key is
  # (id of its (k-1)-gram prefix) * V + last token; np.unique sorts keys, hence groups by prefix.
  raw = [np.bincount(t, minlength=V)]  # raw counts per entry
  parent = [np.zeros(V, np.int64)]  # prefix id per entry (order 1: the single empty context)
  words = [np.arange(V, dtype=np.int64)]  # last token per entry
  suffix = [None]  # id of the (k-1)-gram suffix per entry (drives continuation counts)
  ids = t
  for k in range(2, n + 1):
    uniq, inv, cnt = _count(ids[:-1] * V + t[k - 1:], key_space=len(raw[-1]) * V)
    suf = np.empty(len(uniq), np.int64)
    suf[inv] = ids[1:]
    raw.append(cnt)
    parent.append(uniq // V)
    words.append(uniq % V)
    suffix.append(suf)
    ids = inv

  # Effective counts: raw at the top order, continuation counts N1+(. g) below.
  eff = [np.bincount(suffix[k], minlength=len(raw[k - 1])) for k in range(1, n)] + [raw[n - 1]]
  keep = [np.ones(V, bool)] + [raw[k] >= min_count for k in range(1, n)]

  discounts, alpha, gamma = [], [], []
  n_ctx = [1] + [len(r) for r in raw]  # number of contexts of order k = entries of order k-1
  for k in range(1, n + 1):
    c = eff[k - 1].astype(np.float64)
    d = _modified_discounts(eff[k - 1]) if discount == "modified" else (fixed_discount,) * 3
    discounts.append(d)
    disc = np.maximum(c - _discount(eff[k - 1], d), 0.0)
    par, kp = parent[k - 1], keep[k - 1]
    denom = np.bincount(par, weights=c, minlength=n_ctx[k - 1])
    kept_mass = np.bincount(par[kp], weights=disc[kp], minlength=n_ctx[k - 1])
    safe = np.where(denom > 0, denom, 1.0)
    g = np.where(denom > 0, (denom - kept_mass) / safe, 1.0)
    gamma.append(g if k == 1 else g[keep[k - 2]])  # back-off weight of each stored (k-1)-gram
    alpha.append((disc / safe[par])[kp])

  # Prune and renumber: kept ids are a monotone relabelling, so remapped keys stay sorted.
  keys = [np.arange(V, dtype=np.int64)]
  new_id = np.arange(V, dtype=np.int64)
  for k in range(2, n + 1):
    kp = keep[k - 1]
    keys.append(new_id[parent[k - 1][kp]] * V + words[k - 1][kp])
    new_id = np.cumsum(kp, dtype=np.int64) - 1
  return KneserNeyLM(n=n, vocab_size=V, keys=keys, alpha=alpha, gamma=gamma, discounts=discounts)

