"""A synthetic language with a known entropy rate: a random sparse order-k Markov chain.

Each context of k symbols allows `branching` random successors with Dirichlet(1) weights, mixed with
`smoothing` of the uniform distribution (which makes the chain irreducible and aperiodic, so its
stationary distribution and entropy rate are unique). Symbols are 64 single-byte characters
(base64 alphabet), so with the byte tokenizer one symbol is exactly one token and the token stream
the model sees IS the chain: documents are long stretches of independent chains started from the
stationary distribution and are concatenated without separators.

Stored, in nats per token (exact up to float64 round-off, by power iteration on the context graph):
  entropy_rate            H = sum_c pi(c) H(P(.|c)): the loss of the true model given >= k tokens of
                          context; the right irreducible loss E for long contexts.
  conditional_entropies   h_t = H(X_t | X_0..X_{t-1}) for t = 0..k (h_t = H for t >= k).
optimal_loss(seq_len) gives the Bayes loss averaged over an LM window (targets 1..L, the context of
target t is the t tokens before it in the window), i.e. E for a fit on the pipeline's eval loss.
The LM pipeline cuts windows inside documents only (dataset_info 'windows_within_docs'), so every
window is a clean stationary stretch and optimal_loss is exact for what the model is scored on.
"""

import dataclasses
import string

import numpy as np
import tensorflow_datasets as tfds

from scaling.data import corpus
from scaling import errors

ALPHABET = string.ascii_letters + string.digits + "+/"  # 64 one-byte symbols.


@dataclasses.dataclass(frozen=True)
class Params:
  num_symbols: int = 64
  order: int = 2
  branching: int = 4
  smoothing: float = 0.01
  seed: int = 0
  train_tokens: int = 1 << 22
  eval_tokens: int = 1 << 18  # Per eval split.
  doc_len: int = 1 << 14

  def validate(self) -> "Params":
    if not 2 <= self.num_symbols <= len(ALPHABET):
      raise errors.ConfigError(f"data.markov_symbols: {self.num_symbols} not in [2, {len(ALPHABET)}]")
    if not 1 <= self.order <= 4 or self.num_symbols ** (self.order + 1) > (1 << 26):
      raise errors.ConfigError(f"data.markov_order: {self.order} must be in [1, 4] with markov_symbols**(order+1) "
                       "<= 2**26")
    if not 1 <= self.branching <= self.num_symbols:
      raise errors.ConfigError(f"data.markov_branching: {self.branching} not in [1, {self.num_symbols}]")
    if not 0.0 < self.smoothing <= 1.0:
      raise errors.ConfigError(f"data.markov_smoothing: {self.smoothing} must be in (0, 1]")
    for k in ("train_tokens", "eval_tokens", "doc_len"):
      if getattr(self, k) < 16 * (self.order + 1):
        raise errors.ConfigError(f"data.markov_{k}: {getattr(self, k)} is too small (>= {16 * (self.order + 1)})")
    return self

  @property
  def config_name(self) -> str:
    return (f"s{self.num_symbols}-o{self.order}-b{self.branching}-e{self.smoothing:g}-seed{self.seed}"
            f"-n{self.train_tokens}-{self.eval_tokens}-d{self.doc_len}")


def params_from(data_cfg) -> Params:
  g = data_cfg.get
  d = Params()
  return Params(num_symbols=int(g("markov_symbols", d.num_symbols)), order=int(g("markov_order", d.order)),
                branching=int(g("markov_branching", d.branching)),
                smoothing=float(g("markov_smoothing", d.smoothing)), seed=int(g("markov_seed", d.seed)),
                train_tokens=int(g("markov_train_tokens", d.train_tokens)),
                eval_tokens=int(g("markov_eval_tokens", d.eval_tokens)),
                doc_len=int(g("markov_doc_len", d.doc_len))).validate()


def transition_matrix(p: Params) -> np.ndarray:
  """P[c, x] for contexts c = sum_i a_i S^(k-1-i) (oldest symbol most significant), float64."""
  rng = np.random.default_rng([p.seed, 0x6D61726B])
  s, n_ctx = p.num_symbols, p.num_symbols ** p.order
  # A random `branching`-subset of successors per context: the first columns of a random permutation.
  support_CxB = np.argsort(rng.random((n_ctx, s)), axis=1)[:, :p.branching]
  weights_CxB = rng.dirichlet(np.ones(p.branching), size=n_ctx)
  P_CxS = np.zeros((n_ctx, s))
  np.put_along_axis(P_CxS, support_CxB, weights_CxB, axis=1)
  return (1.0 - p.smoothing) * P_CxS + p.smoothing / s


def stationary(P_CxS: np.ndarray, order: int, tol: float = 1e-15, max_iter: int = 100_000) -> np.ndarray:
  """Stationary distribution over contexts by power iteration (the chain is primitive)."""
  n_ctx, s = P_CxS.shape
  rest = n_ctx // s  # Contexts without their oldest symbol.
  P_SxRxS = P_CxS.reshape(s, rest, s)
  pi = np.full(n_ctx, 1.0 / n_ctx)
  for _ in range(max_iter):
    # (a, r) -> (r, x): drop the oldest symbol, append the new one.
    new = np.einsum("ar,arx->rx", pi.reshape(s, rest), P_SxRxS).reshape(n_ctx)
    new /= new.sum()
    if np.abs(new - pi).sum() < tol:
      return new
    pi = new
  return pi


def _entropy(p: np.ndarray, axis=None) -> np.ndarray:
  p = np.asarray(p)
  return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


@dataclasses.dataclass(frozen=True)
class Chain:
  params: Params
  P_CxS: np.ndarray
  pi_C: np.ndarray

  @property
  def entropy_rate(self) -> float:
    return float(self.pi_C @ _entropy(self.P_CxS, axis=1))

  @property
  def conditional_entropies(self) -> list[float]:
    """h_t = H(X_t | X_<t) for t = 0..k; joint entropies from the stationary context marginals."""
    s, k = self.params.num_symbols, self.params.order
    pi = self.pi_C.reshape((s,) * k)
    joint = [0.0] + [float(_entropy(pi.sum(axis=tuple(range(t, k))))) for t in range(1, k + 1)]
    return [joint[t + 1] - joint[t] for t in range(k)] + [self.entropy_rate]

  def optimal_loss(self, seq_len: int) -> float:
    """Bayes per-token loss over an LM window: targets x_1..x_L each given the window before it."""
    h = self.conditional_entropies
    k = self.params.order
    return float(sum(h[min(t, k)] for t in range(1, seq_len + 1)) / seq_len)

  def sample(self, num_docs: int, doc_len: int, rng: np.random.Generator) -> np.ndarray:
    """[num_docs, doc_len] symbols: independent chains, each started from the stationary law."""
    s, k = self.params.num_symbols, self.params.order
    n_ctx = self.P_CxS.shape[0]
    out_NxT = np.empty((num_docs, doc_len), dtype=np.uint8)
    ctx = rng.choice(n_ctx, size=num_docs, p=self.pi_C)
    for i in range(k):  # Unpack the initial context into the first k symbols, oldest first.
      out_NxT[:, i] = (ctx // s ** (k - 1 - i)) % s
    # Inverse-CDF sampling for all chains at once: row c's CDF is shifted to [c, c+1].
    cdf = np.cumsum(self.P_CxS, axis=1)
    cdf /= cdf[:, -1:]
    cdf_flat = (cdf + np.arange(n_ctx)[:, None]).reshape(-1)
    u_NxT = rng.random((num_docs, doc_len))
    for t in range(k, doc_len):
      x = np.searchsorted(cdf_flat, ctx + u_NxT[:, t], side="right") - ctx * s
      x = np.minimum(x, s - 1)  # Round-off at a row's end.
      out_NxT[:, t] = x
      ctx = (ctx * s + x) % n_ctx
    return out_NxT

  def log_probs(self, symbols_NxT: np.ndarray) -> np.ndarray:
    """log P(x_t | x_{t-k..t-1}) for t >= k: [N, T-k]."""
    s, k = self.params.num_symbols, self.params.order
    x = symbols_NxT.astype(np.int64)
    ctx = np.zeros_like(x[:, k:])
    for i in range(k):
      ctx = ctx * s + x[:, i:x.shape[1] - k + i]
    return np.log(self.P_CxS[ctx, x[:, k:]])


def make_chain(p: Params) -> Chain:
  P = transition_matrix(p)
  return Chain(p, P, stationary(P, p.order))


def encode_symbols(symbols: np.ndarray, num_symbols: int) -> str:
  table = np.frombuffer(ALPHABET[:num_symbols].encode(), dtype=np.uint8)
  return table[symbols].tobytes().decode("ascii")


def decode_text(text: str | bytes, num_symbols: int) -> np.ndarray:
  """Characters -> symbol ids (inverse of encode_symbols)."""
  lut = np.full(256, 255, dtype=np.uint8)
  lut[np.frombuffer(ALPHABET[:num_symbols].encode(), dtype=np.uint8)] = np.arange(num_symbols)
  b = text.encode() if isinstance(text, str) else text
  return lut[np.frombuffer(b, dtype=np.uint8)]


@dataclasses.dataclass(eq=False)
class MarkovConfig(tfds.core.BuilderConfig):
  params: Params = dataclasses.field(default_factory=Params)


class ScalingMarkov(corpus.CorpusBuilder):
  """Samples of a random sparse Markov chain, one example per independent stretch of chain."""

  VERSION = tfds.core.Version("1.0.0")

  def _split_generators(self, dl_manager):
    p = self.builder_config.params
    chain = make_chain(p)
    self.info.metadata.update(
        params=dataclasses.asdict(p), entropy_rate=chain.entropy_rate,
        conditional_entropies=chain.conditional_entropies, alphabet=ALPHABET[:p.num_symbols],
        separator="none: documents are concatenated directly")
    sizes = {"train": p.train_tokens, "validation": p.eval_tokens, "test": p.eval_tokens}
    lengths = {s: [min(p.doc_len, n - i) for i in range(0, n, p.doc_len)] for s, n in sizes.items()}
    # All splits' chains step together: sampling cost is doc_len vectorized steps in total.
    sym_NxT = chain.sample(sum(map(len, lengths.values())), p.doc_len, np.random.default_rng([p.seed, 1]))
    self.info.metadata["sha256"] = corpus.content_hash([("", sym_NxT.tobytes())])
    out, row = {}, 0
    for s in corpus.SPLITS:
      out[s] = self._generate_examples(s, sym_NxT[row:row + len(lengths[s])], lengths[s], p.num_symbols)
      row += len(lengths[s])
    return out

  def _generate_examples(self, split: str, sym_NxT: np.ndarray, lengths: list[int], num_symbols: int):
    for i, n in enumerate(lengths):
      key = f"{split}-{i:06d}"
      yield key, {"text": encode_symbols(sym_NxT[i, :n], num_symbols), "path": key}


def builder(data_dir: str, p: Params) -> tfds.core.DatasetBuilder:
  cfg = MarkovConfig(name=p.config_name, params=p)
  return corpus.prepare(ScalingMarkov(data_dir=data_dir, config=cfg, file_format="array_record"))
