"""grain input pipelines for every task: shuffle, repeat, per-process shard, batch, exact resume.

Each split is a fixed table of examples held as numpy arrays (LM window offsets into a memory-mapped
token stream, span windows, snippets, or classification rows). grain does the index bookkeeping:
`MapDataset.range(n).shuffle(seed).repeat(epochs)` (a fresh permutation per epoch; with shuffle=False
a fixed permutation shared by all runs, see FIXED_ORDER_SEED), then process p
takes positions p, p+P, p+2P, ... and batches them, so the union of all processes' step-t batches is
global positions [t*B, (t+1)*B): the global batch does not depend on the number of processes. The
batch itself is built with one vectorized numpy gather. A finite run (num_epochs set) is padded to
whole global batches with rows of weight 0, so every process yields the same number of full-shape
batches and every example is seen exactly once per epoch. Iterator state is grain's
{'next_index': k}: JSON, exact.
"""

import dataclasses
import functools
from typing import Any, Callable

import grain
import numpy as np

from scaling.data import corpus, markov, sources, stdlib, streaming, tasks, tokens
from scaling.data.tokenizer import get_tokenizer
from scaling import errors

TEXT_TASKS = ("lm", "span", "prefix_lm", "module_cls")  # read token streams; classify reads arrays
TASKS = (*TEXT_TASKS, "classify")
DEFAULTS = dict(name="stdlib", task="lm", seq_len=128, batch_size=32, tokenizer="byte", noise_density=0.15,
                mean_noise_span_length=3.0, num_threads=1, prefetch=8, streaming="auto",
                load_tokens_limit=1 << 27, order="permuted", unique_tokens=0)
EVAL_NOISE_SEED = 0  # Span corruption of validation/test is the same for every run.
# shuffle=False with data.order='permuted' (default) reads examples in one fixed pseudo-random order,
# the same for every run: a truncated eval (the first k batches) is then a uniform sample of the split
# rather than its first few files. data.order='stream' reads them in corpus order.
FIXED_ORDER_SEED = 0x5CA11


def default_data_dir() -> str:
  return sources.default_data_dir()


@dataclasses.dataclass(frozen=True)
class Spec:
  """The validated fields of a data config (and the key of the per-process caches below)."""
  name: str
  task: str
  seq_len: int
  batch_size: int
  tokenizer: str
  noise_density: float
  mean_noise_span_length: float
  data_dir: str
  extra: tuple  # Remaining scalar fields (markov_*, train_examples, split_seed, ...), sorted.

  @property
  def cfg(self) -> dict:
    return dict(name=self.name, task=self.task, seq_len=self.seq_len, batch_size=self.batch_size,
                tokenizer=self.tokenizer, data_dir=self.data_dir, **dict(self.extra))


def spec_of(data_cfg) -> Spec:
  """Validates a data config; one-line ValueError naming the field."""
  d = {} if data_cfg is None else (data_cfg.to_dict() if hasattr(data_cfg, "to_dict") else dict(data_cfg))
  task = str(d.get("task", DEFAULTS["task"]))
  if task not in TASKS:
    raise errors.ConfigError(f"data.task: {task!r} not in {list(TASKS)}")
  name = str(d.get("name", "digits" if task == "classify" else DEFAULTS["name"]))
  for k in ("seq_len", "batch_size"):
    v = d.get(k, DEFAULTS[k])
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
      raise errors.ConfigError(f"data.{k}: {v!r} must be a positive integer")
  if task in TEXT_TASKS and int(d.get("seq_len", DEFAULTS["seq_len"])) < 2:
    raise errors.ConfigError(f"data.seq_len: {d.get('seq_len')} must be >= 2")
  nd = float(d.get("noise_density", DEFAULTS["noise_density"]))
  if not 0.0 < nd < 1.0:
    raise errors.ConfigError(f"data.noise_density: {nd} must be in (0, 1)")
  ms = float(d.get("mean_noise_span_length", DEFAULTS["mean_noise_span_length"]))
  if ms < 1.0:
    raise errors.ConfigError(f"data.mean_noise_span_length: {ms} must be >= 1")
  if task == "module_cls" and name != "stdlib":
    raise errors.ConfigError(f"data.name: task 'module_cls' is built from the 'stdlib' corpus, got {name!r}")
  tok = str(d.get("tokenizer", DEFAULTS["tokenizer"]) or "byte")
  if name == "markov" and tok != "byte":
    raise errors.ConfigError(f"data.tokenizer: the 'markov' corpus needs 'byte' (its entropy is per byte-token), "
                     f"got {tok!r}")
  data_dir = sources.data_dir_of(d)
  skip = {"name", "task", "seq_len", "batch_size", "tokenizer", "noise_density", "mean_noise_span_length",
          "data_dir"}
  extra = tuple(sorted((k, v) for k, v in d.items()
                       if k not in skip and (v is None or isinstance(v, (int, float, str, bool)))))
  order = d.get("order", DEFAULTS["order"])
  if order not in ("permuted", "stream"):
    raise errors.ConfigError(f"data.order: {order!r} not in ['permuted', 'stream']")
  u = d.get("unique_tokens", 0)
  if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 0 or (u and task == "classify"):
    raise errors.ConfigError(f"data.unique_tokens: got {u!r}; allowed: 0 (the whole training split) or a positive "
                     f"integer (train on the split's first U tokens, repeated){'' if task != 'classify' else ', 0 for classify'}")
  if d.get("streaming", "auto") not in ("auto", True, False):
    raise errors.ConfigError(f"data.streaming: {d.get('streaming')!r} not in ['auto', True, False]")
  return Spec(name, task, int(d.get("seq_len", DEFAULTS["seq_len"])),
              int(d.get("batch_size", DEFAULTS["batch_size"])), tok, nd, ms, data_dir, extra)


# ------------------------------------------------------------------------------------------------
# Per-process caches: opening a corpus and mapping its token files is cheap but not free.


@functools.lru_cache(maxsize=16)
def _source(spec: Spec) -> sources.Source:
  return sources.open_source(spec.cfg)


def _unique(spec: Spec, split: str) -> int:
  """data.unique_tokens for the training split (0: all of it); evaluation splits are always whole."""
  return int(_option(spec, "unique_tokens")) if split == "train" else 0


@functools.lru_cache(maxsize=32)
def _token_split(spec: Spec, split: str) -> tokens.TokenSplit:
  if split not in corpus.SPLITS:
    raise errors.ConfigError(f"split: {split!r} not in {list(corpus.SPLITS)}")
  src, tok, u = _source(spec), get_tokenizer(spec.tokenizer), _unique(spec, split)
  if u and streaming.wanted(_option(spec, "streaming"), src, split):
    # A split too big to tokenize whole: read only its first U tokens (record order) into memory; from
    # there it is an in-memory split like any other (shuffled windows, exact resume, repeated epochs).
    return tokens.head(streaming.first_tokens(src, tok, split, u), u, src.name)
  ts = tokens.split_tokens(src, tok, split, spec.data_dir)
  return tokens.head(ts, u, src.name) if u else ts


def _option(spec: Spec, key: str):
  return dict(spec.extra).get(key, DEFAULTS[key])


def _streamed(spec: Spec, split: str) -> bool:
  return (spec.task in ("lm", "span", "prefix_lm") and not _unique(spec, split)
          and streaming.wanted(_option(spec, "streaming"), _source(spec), split))


def _span_lengths(spec: Spec) -> tasks.SpanLengths:
  return tasks.span_lengths(spec.seq_len, spec.noise_density, spec.mean_noise_span_length)


@functools.lru_cache(maxsize=32)
def _examples(spec: Spec, split: str) -> dict[str, np.ndarray]:
  """The fixed table of examples of one split, as numpy arrays (row i = example i)."""
  if spec.task == "classify":
    x, y = _classification(spec)[0][split]
    return {"x": x, "label": y}
  ts = _token_split(spec, split)
  src = _source(spec)
  if spec.task == "lm":
    out = {"start": tasks.lm_starts(ts.doc_starts, len(ts), spec.seq_len, src.windows_within_docs)}
  elif spec.task == "span":
    raw = _span_lengths(spec).raw
    out = {"start": tasks.window_starts(ts.doc_starts, len(ts), raw, raw, src.windows_within_docs)}
  elif spec.task == "prefix_lm":
    out = {"start": tasks.window_starts(ts.doc_starts, len(ts), spec.seq_len, spec.seq_len, src.windows_within_docs)}
  else:
    labels = _module_labels(spec)
    recs = src.split(split)
    index = {m: i for i, m in enumerate(labels)}
    doc_labels = np.array([index.get(stdlib.top_level(r["path"].decode()), -1) for r in recs], dtype=np.int64)
    starts, y = tasks.module_snippets(ts.doc_starts, doc_labels, spec.seq_len)
    out = {"start": starts, "label": y}
  if _unique(spec, split) and (len(out["start"]) == 0 or (spec.task == "lm" and len(ts) < spec.seq_len + 1)):
    raise errors.ConfigError(f"data.unique_tokens: {len(ts)} tokens hold no training example of data.seq_len="
                     f"{spec.seq_len} ({spec.task}); allowed: at least one window's worth (> {spec.seq_len} tokens)")
  if len(out["start"]) == 0 or (spec.task == "lm" and len(ts) < spec.seq_len + 1):
    raise errors.ConfigError(f"data.seq_len: {spec.seq_len} leaves no examples in split {split!r} of {spec.name!r} "
                     f"({len(ts)} tokens); use a shorter seq_len or a bigger corpus")
  return out


@functools.lru_cache(maxsize=4)
def _module_labels(spec: Spec) -> tuple[str, ...]:
  src = _source(spec)
  return tuple(tasks.module_labels([(r["path"].decode(), len(r["text"])) for s in corpus.SPLITS
                                    for r in src.split(s)]))


@functools.lru_cache(maxsize=4)
def _classification(spec: Spec):
  return tasks.classification(spec.cfg)


# ------------------------------------------------------------------------------------------------
# Public API.


def dataset_info(data_cfg) -> dict[str, Any]:
  """What a model and a fit need to know about the data. Builds/tokenizes on first use (cached)."""
  spec = spec_of(data_cfg)
  info: dict[str, Any] = dict(name=spec.name, task=spec.task, batch_size=spec.batch_size,
                              data_dir=spec.data_dir)
  if spec.task == "classify":
    arrays, cinfo = _classification(spec)
    info.update(cinfo, vocab_size=None, hash=f"{cinfo['name']}-split_seed{dict(spec.extra).get('split_seed', 0)}")
    return info
  src = _source(spec)
  tok = get_tokenizer(spec.tokenizer)
  streamed = {s: _streamed(spec, s) for s in corpus.SPLITS}
  # Streamed splits are never tokenized whole, so their sizes are unknown (None).
  info.update(seq_len=spec.seq_len, tokenizer=spec.tokenizer, vocab_size=tok.vocab_size, pad_id=tok.pad_id,
              bos_id=tok.bos_id, eos_id=tok.eos_id, hash=src.hash, num_classes=None, num_features=None,
              metadata=src.metadata, tfds_name=src.builder.info.full_name, streaming=streamed,
              num_tokens={s: None if streamed[s] else len(_token_split(spec, s)) for s in corpus.SPLITS},
              num_examples={s: None if streamed[s] else len(_examples(spec, s)["start"]) for s in corpus.SPLITS})
  if spec.task == "prefix_lm":
    info.update(inputs_len=spec.seq_len // 2, targets_len=spec.seq_len - spec.seq_len // 2)
  if spec.task == "span":
    sl = _span_lengths(spec)
    info.update(vocab_size=tok.vocab_size + sl.spans, sentinel_start=tok.vocab_size, num_sentinels=sl.spans,
                inputs_len=sl.inputs, targets_len=sl.targets, raw_len=sl.raw, noise_tokens=sl.noise,
                noise_density=spec.noise_density, mean_noise_span_length=spec.mean_noise_span_length)
  if spec.task == "module_cls":
    labels = _module_labels(spec)
    info.update(num_classes=len(labels), label_names=list(labels))
  if spec.name == "markov":
    chain = _chain(spec)
    info.update(entropy_rate=chain.entropy_rate, conditional_entropies=chain.conditional_entropies)
    if spec.task == "lm":
      info["optimal_loss"] = chain.optimal_loss(spec.seq_len)
  return info


@functools.lru_cache(maxsize=4)
def _chain(spec: Spec) -> markov.Chain:
  return markov.make_chain(markov.params_from(spec.cfg))


def epochs(data_cfg, examples: int) -> dict:
  """What a run of `examples` training examples draws from: `unique_tokens` (the training split's tokens,
  data.unique_tokens when set) and `epochs` (passes over its examples the budget implies; Muennighoff's
  R_D + 1). None where the split is streamed (its size is not known)."""
  info = dataset_info(data_cfg)
  n = (info.get("num_examples") or {}).get("train")
  return {"unique_tokens": (info.get("num_tokens") or {}).get("train"),
          "epochs": float(examples) / n if n else None}


def load_tokens(data_cfg, split: str) -> np.ndarray:
  """The whole split as one int32 token stream (documents separated by EOS; none for 'markov').
  For a streamed (huge) split: its first data.load_tokens_limit tokens, in record order."""
  spec = spec_of(data_cfg)
  if spec.task == "classify":
    raise errors.ConfigError(f"data.task: load_tokens needs a text task {TEXT_TASKS}, got 'classify'")
  if split not in corpus.SPLITS:
    raise errors.ConfigError(f"split: {split!r} not in {list(corpus.SPLITS)}")
  if _streamed(spec, split):
    return streaming.load_tokens(_source(spec), get_tokenizer(spec.tokenizer), split,
                                 int(_option(spec, "load_tokens_limit")))
  return np.asarray(_token_split(spec, split).tokens, dtype=np.int32)


def _batch_fn(spec: Spec, split: str, seed: int) -> Callable[[tuple], dict]:
  ex = _examples(spec, split)
  if spec.task == "classify":
    x, y = ex["x"], ex["label"]

    def classify(t):
      pos, idx = t
      valid = idx >= 0
      i = np.where(valid, idx, 0)
      return {"x": np.where(valid[:, None], x[i], 0.0).astype(np.float32),
              "label": np.where(valid, y[i], 0).astype(np.int32), "weights": valid.astype(np.float32)}
    return classify

  tok = get_tokenizer(spec.tokenizer)
  stream = _token_split(spec, split).tokens
  starts = ex["start"]
  if spec.task == "lm":

    def lm(t):
      pos, idx = t
      valid = idx >= 0
      return tasks.lm_batch(stream, starts[np.where(valid, idx, 0)], valid, spec.seq_len, tok.pad_id)
    return lm

  if spec.task == "prefix_lm":

    def prefix_lm(t):
      pos, idx = t
      valid = idx >= 0
      w = tasks.gather(stream, starts[np.where(valid, idx, 0)], spec.seq_len)
      return tasks.prefix_lm_batch(w, np.broadcast_to(valid[:, None], w.shape), tok.pad_id)
    return prefix_lm

  if spec.task == "module_cls":
    labels = ex["label"]

    def module_cls(t):
      pos, idx = t
      valid = idx >= 0
      i = np.where(valid, idx, 0)
      x = np.where(valid[:, None], tasks.gather(stream, starts[i], spec.seq_len), tok.pad_id)
      return {"inputs": x.astype(np.int32), "label": np.where(valid, labels[i], 0).astype(np.int32),
              "weights": valid.astype(np.float32)}
    return module_cls

  sl = _span_lengths(spec)
  noise_seed = int(seed) % 2**32 if split == "train" else EVAL_NOISE_SEED

  def span(t):
    pos, idx = t
    valid = idx >= 0
    x = tasks.gather(stream, starts[np.where(valid, idx, 0)], sl.raw)
    # One generator per example, keyed by its global stream position: the corruption of an example
    # does not depend on batch size or process count, and differs between epochs.
    rngs = [np.random.default_rng([noise_seed, int(p) + 1]) for p in pos]
    out = tasks.span_corrupt(x, tasks.noise_mask(rngs, sl), sl, tok)
    for k in ("weights", "input_mask"):
      out[k] = out[k] * valid[:, None]
    return out
  return span


def make_loader(data_cfg, *, split: str, seed: int, shuffle: bool, num_epochs: int | None,
                process_index: int | None = None, process_count: int | None = None) -> grain.IterDataset:
  """Batches (dicts of numpy arrays) of this process's share of the global batch; see module doc."""
  spec = spec_of(data_cfg)
  if split not in corpus.SPLITS:
    raise errors.ConfigError(f"split: {split!r} not in {list(corpus.SPLITS)}")
  if num_epochs is not None and (isinstance(num_epochs, bool) or int(num_epochs) < 1):
    raise errors.ConfigError(f"num_epochs: {num_epochs!r} must be None (forever) or a positive integer")
  if process_index is None or process_count is None:
    import jax
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise errors.ConfigError(f"process_index: {process_index} not in [0, {process_count})")
  if spec.batch_size % process_count:
    raise errors.ConfigError(f"data.batch_size: {spec.batch_size} is not divisible by process_count {process_count}")
  order_seed = int(seed) % 2**32 if shuffle else FIXED_ORDER_SEED if _option(spec, "order") == "permuted" else None
  read_options = grain.ReadOptions(num_threads=int(_option(spec, "num_threads")),
                                   prefetch_buffer_size=int(_option(spec, "prefetch")))
  if _streamed(spec, split):
    return streaming.make_loader(
        _source(spec), get_tokenizer(spec.tokenizer), split, task=spec.task, seq_len=spec.seq_len,
        rows=spec.batch_size // process_count,
        span=_span_lengths(spec) if spec.task == "span" else None,
        noise_seed=int(seed) % 2**32 if split == "train" else EVAL_NOISE_SEED, order_seed=order_seed,
        num_epochs=None if num_epochs is None else int(num_epochs), process_index=process_index,
        process_count=process_count, read_options=read_options)
  n = len(next(iter(_examples(spec, split).values())))
  make = _batch_fn(spec, split, seed)

  ds = grain.MapDataset.range(n)
  if order_seed is not None:
    ds = ds.shuffle(seed=order_seed)
  ds = ds.repeat(None if num_epochs is None else int(num_epochs))
  ds = ds.map_with_index(lambda i, w: (i, w))  # (global position, example index).
  if num_epochs is not None:
    total = n * int(num_epochs)
    pad = -total % spec.batch_size
    if pad:
      ds = grain.MapDataset.concatenate([ds, grain.MapDataset.range(pad).map(lambda _: (-1, -1))])
  per = spec.batch_size // process_count
  ds = ds[process_index::process_count]
  # grain's batch(1) of an endless dataset overflows computing its length (> sys.maxsize); one example per
  # step is the same leading axis of size 1.
  ds = ds.batch(per) if per > 1 else ds.map(lambda t: tuple(np.asarray(v)[None] for v in t))
  ds = ds.map(make)
  return ds.to_iter_dataset(read_options)
