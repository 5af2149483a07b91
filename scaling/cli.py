"""`scaling <command>`: train | sweep | status | plan | fit | predict | compare | plot | sample | baselines.

Configs are ml_collections files: `--config=configs/gpt.py:tiny --config.train.lr=1e-3`.
"""

import logging as pylogging
import os
import re
import sys
from typing import NoReturn

from absl import flags, logging
from ml_collections import config_flags

from scaling import errors  # jax-free: the verbs import the rest when they run

COMMANDS = {
    "train": "train one run: --config=configs/gpt.py:tiny --workdir=DIR",
    "sweep": "run a ladder: --config=configs/sweeps/gpt_ladder.py --sweep_dir=DIR [--executor=local|pool|slurm]",
    "status": "where a sweep stands (reads only its files): SWEEP_DIR [--watch [--every=SECONDS]]",
    "plan": "runs, FLOPs, memory and device-hours of a sweep before it runs: --config=configs/sweeps/X.py[:arg] "
            "[--chip=h100|h200|a100|v5e|cpu] [--mfu=F] [--pue --price --grid --power]",
    "fit": "fit scaling laws: SWEEP_DIR [--law=auto|power|kaplan|approach1|approach2|approach3|hparams|data_constrained]",
    "predict": "forecast a run with a 95 % predictive interval, kept in SWEEP_DIR/predictions.jsonl: SWEEP_DIR "
               "--N=PARAMS [--D=TOKENS] | --C=FLOPS [--law=auto|power|kaplan|approach3] [--family=F]; "
               "SWEEP_DIR --score: score the forecasts against the runs trained since",
    "compare": "effective compute multiplier of one ladder over another: SWEEP_DIR --baseline=LADDER "
               "--candidate=LADDER [--by=compute|params] [--law=shared_E|separate_E] [--n_boot=N] [--out_dir=DIR]",
    "plot": "write figures: SWEEP_DIR [--out_dir=DIR]",
    "sample": "generate text from a trained GPT: --workdir=RUN --prompt=... [--temperature --top_k --max_tokens --seed]",
    "baselines": "run one classic baseline: --config=configs/baseline.py:tree,64 --workdir=DIR",
}



def define_flags() -> flags.FlagValues:
  """A fresh set of flags per invocation (no process-global state: `main` can run twice in one process)."""
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "ml_collections config file[:arg].", lock_config=False,
                                  flag_values=fv)
  flags.DEFINE_string("workdir", None, "Run directory (train, sample, baselines).", flag_values=fv)
  flags.DEFINE_string("sweep_dir", None, "Sweep directory (sweep).", flag_values=fv)
  flags.DEFINE_enum("executor", None, ["local", "pool", "slurm"], "Sweep executor (default: the sweep config's).",
                    flag_values=fv)
  flags.DEFINE_integer("workers", 0, "Processes for --executor=pool (0: the sweep config's).", flag_values=fv)
  flags.DEFINE_bool("retry_failed", False, "Re-run failed / diverged runs of a sweep.", flag_values=fv)
  flags.DEFINE_list("reuse_from", [], "sweep: other sweep dirs whose completed runs of an equal config are copied "
                    "in instead of trained again.", flag_values=fv)
  flags.DEFINE_string("law", "auto", "Scaling law to fit.", flag_values=fv)
  flags.DEFINE_string("x", "params_nonembed", "Size column to fit against (params, params_nonembed, tokens, flops).",
                      flag_values=fv)
  flags.DEFINE_integer("n_boot", 200, "Bootstrap resamples for confidence intervals.", flag_values=fv)
  flags.DEFINE_string("baseline", None, "compare: the ladder to measure against (a name in the sweep).", flag_values=fv)
  flags.DEFINE_string("candidate", None, "compare: the ladder whose multiplier is measured.", flag_values=fv)
  flags.DEFINE_string("by", "compute", "compare: compute (FLOPs multiplier) or params (N multiplier at fixed data).",
                      flag_values=fv)
  flags.DEFINE_string("out_dir", None, "Where figures go (default SWEEP_DIR/figures).", flag_values=fv)
  flags.DEFINE_string("prompt", "", "Prompt text for sampling.", flag_values=fv)
  flags.DEFINE_float("temperature", 1.0, "Sampling temperature (0: greedy).", flag_values=fv)
  flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens (0: all).", flag_values=fv)
  flags.DEFINE_integer("max_tokens", 200, "Tokens to generate.", flag_values=fv)
  flags.DEFINE_integer("seed", 0, "Sampling seed.", flag_values=fv)
  flags.DEFINE_bool("verbose", False, "Show library INFO logs (orbax, absl).", flag_values=fv)
  flags.DEFINE_bool("quiet", False, "Only warnings from scaling itself (no per-run event lines).", flag_values=fv)
  flags.DEFINE_bool("watch", False, "status: refresh until every run has ended.", flag_values=fv)
  flags.DEFINE_float("every", 5.0, "status --watch: seconds between refreshes.", flag_values=fv)
  flags.DEFINE_enum("chip", "h100", ["h100", "h200", "a100", "v5e", "cpu"], "plan: the accelerator to budget for.",
                    flag_values=fv)
  flags.DEFINE_float("mfu", 0.0, "plan: assumed model-FLOPs utilization (0: the chip's default, see "
                     "scaling/sweep/plan.py).", flag_values=fv)
  flags.DEFINE_float("N", None, "predict: model size (the fit's size column, non-embedding params by default).",
                     flag_values=fv)
  flags.DEFINE_float("D", None, "predict: training tokens (default for a power law: the ladder's rule).",
                     flag_values=fv)
  flags.DEFINE_float("C", None, "predict: FLOPs; forecast at approach 3's compute-optimal (N, D).", flag_values=fv)
  flags.DEFINE_string("family", None, "predict: the family to forecast (when the sweep has several).", flag_values=fv)
  flags.DEFINE_integer("holdout", 0, "predict: leave the K largest sizes out of the fit and forecast the largest "
                       "(a backtest, scored at once).", flag_values=fv)
  flags.DEFINE_bool("score", False, "predict: score SWEEP_DIR's forecasts against its runs and print the ledger.",
                    flag_values=fv)
  for name, what in (("pue", "facility power / IT power"), ("price", "USD per device-hour"),
                     ("grid", "grid carbon intensity, gCO2e/kWh"), ("power", "W per device")):
    flags.DEFINE_float(name, None, f"plan: {what} (default: the chip's, sources in scaling/sweep/plan.py).",
                       flag_values=fv)
  return fv


# Exceptions that mean "the user asked for something that cannot be": one line on stderr, exit 2.
# Library code raises ValueError("field: what is wrong; allowed: what is") before any compile.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


class UsageError(Exception):
  pass


def _need(fv: flags.FlagValues, name: str, example: str):
  v = getattr(fv, name)
  if v is None:
    raise UsageError(f"--{name}: required; allowed: {example}")
  return v


def _sweep_dir(argv) -> str:
  if len(argv) < 2:
    raise UsageError("SWEEP_DIR: required; allowed: a directory written by `scaling sweep`")
  if len(argv) > 2:
    raise UsageError(f"{argv[2]}: unexpected argument; allowed: one SWEEP_DIR")
  if not os.path.isdir(argv[1]):
    raise UsageError(f"SWEEP_DIR: {argv[1]!r} is not a directory; allowed: a directory written by `scaling sweep`")
  return argv[1]


def _first_line(e: BaseException) -> str:
  """The message of the innermost error in `e`'s text: config files raise inside ml_collections, whose
  flag error carries their traceback as text."""
  lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
  for ln in reversed(lines):
    m = re.match(r"^(?:[\w.]+(?:Error|Exception)): (.+)$", ln)
    if m:
      return m.group(1)
  return lines[-1] if lines else type(e).__name__


def flag_error(e: BaseException, argv: list[str]) -> str:
  """One line for an error raised while parsing flags and loading the config file with its overrides."""
  text = str(e)
  if isinstance(e, flags.UnrecognizedFlagError):
    return f"--{e.flagname}: unknown flag; allowed: the flags `scaling {argv[0].split()[-1]} --help` lists"
  m = re.search(r"No such file or directory: '([^']+)'", text)
  if m:
    return f"--config: no such file {m.group(1)!r}; allowed: a config file, e.g. configs/gpt.py:tiny"
  if isinstance(e, (AttributeError, KeyError)):  # an override names a field the config does not have
    m = re.match(r"^'?\\?'?(\w+)", text.strip("'\"")) or re.search(r"'(\w+)'", text)
    name = m.group(1) if m else ""
    hint = re.search(r"Did you mean (.+?) instead", text)
    arg = next((a.split("=")[0] for a in argv if a.startswith("--config.") and a.split("=")[0].endswith("." + name)),
               f"--config.{name}")
    return f"{arg}: unknown config field" + (f"; allowed: did you mean {hint.group(1)}?" if hint else
                                             "; allowed: the fields the config file defines")
  m = re.match(r"flag (--[\w.]+)(?:=(\S*))?: (.*)", text.strip(), re.S)
  inner = _first_line(e)
  if m and "Error whilst parsing config file" in text:
    return inner if re.match(r"^[\w.]+: ", inner) else f"{m.group(1)}: {inner}"
  if m:
    return f"{m.group(1)}: {inner.split(': ', 1)[-1] if inner.startswith('flag ') else inner}"
  return inner


def fail(command: str, message: str) -> NoReturn:
  print(f"scaling {command}: {message}", file=sys.stderr)
  sys.exit(2)


def _run(command: str, argv, fv: flags.FlagValues) -> None:
  # orbax / absl INFO lines drown the progress bar
  logging.set_verbosity(logging.INFO if fv.verbose else logging.WARNING)
  pylogging.getLogger("scaling").setLevel(pylogging.WARNING if fv.quiet else pylogging.INFO)  # our own events
  if command in ("fit", "predict", "compare", "plot", "status"):
    d = _sweep_dir(argv)
  elif len(argv) > 1:
    raise UsageError(f"{argv[1]}: unexpected argument; allowed: flags only (`scaling {command} --help`)")
  if command == "train":
    from scaling.train import loop
    cfg = fv.config if fv.config is not None else _need(fv, "config", "a config file, e.g. configs/gpt.py:tiny")
    result = loop.train(cfg, _need(fv, "workdir", "a run directory to write, e.g. runs/tiny"))
    print(f"wrote {fv.workdir}/result.json: status={result['status']}")
    if result["status"] != "completed":
      sys.exit(1)
  elif command == "baselines":
    from scaling.baselines import run
    cfg = fv.config if fv.config is not None else _need(fv, "config", "configs/baseline.py:FAMILY,SIZE")
    workdir = _need(fv, "workdir", "a run directory to write, e.g. runs/ngram5")
    run.validate(cfg)
    result = run.run(cfg, workdir)
    print(f"wrote {workdir}/result.json: status={result['status']} eval_loss={result.get('eval_loss')}")
    if result["status"] != "completed":
      sys.exit(1)
  elif command == "sweep":
    from scaling.sweep import downstream, runner
    cfg = fv.config if fv.config is not None else _need(fv, "config", "a sweep config, e.g. configs/sweeps/gpt_ladder.py")
    # A config with a `finetune` section is a pretrain ladder followed by fine-tuning each member.
    entry = downstream.main if cfg.get("finetune") else runner.main
    out = _need(fv, "sweep_dir", "a directory to write, e.g. sweeps/ladder")
    if os.path.exists(out) and not os.path.isdir(out):
      raise errors.ConfigError(f"sweep_dir: {out!r} is a file; allowed: a directory (new, or a sweep's to resume)")
    entry(cfg, out, executor=fv.executor,
          workers=fv.workers, retry_failed=fv.retry_failed, reuse_from=tuple(fv.reuse_from))
  elif command == "status":
    from scaling.sweep import status  # reads files only: no jax
    status.main(d, fv.watch, fv.every)
  elif command == "plan":
    from scaling.sweep import plan
    plan.main(fv.config if fv.config is not None else _need(fv, "config", "a sweep config, e.g. configs/sweeps/kaplan.py:full"),
              fv.chip, fv.mfu, pue=fv.pue, price=fv.price, grid=fv.grid, power=fv.power)
  elif command == "fit":
    from scaling.laws import fit
    res = fit.fit_sweep(d, law=fv.law, x=fv.x, n_boot=fv.n_boot)
    print(fit.format_table(res))
    print(f"wrote {d}/fit.json")
  elif command == "predict":
    from scaling.laws import predict
    from scaling.sweep import ledger
    if fv.score:
      print(ledger.format_table(ledger.score(d)), end="")
      return
    r = predict.predict(d, N=fv.N, D=fv.D, C=fv.C, law=fv.law if fv["law"].present else None, family=fv.family,
                        x=fv.x, n_boot=fv.n_boot, holdout=fv.holdout)
    print(predict.format_forecast(r) + f"appended to {ledger.path(d)} as line {r['index']}")
    if fv.holdout:  # a backtest: its runs exist, so score it now (next to the actual)
      print(ledger.format_table(ledger.score(d)), end="")
  elif command == "compare":
    from scaling.laws import compare, plot, plot_compare
    base = _need(fv, "baseline", "a ladder name in the sweep (its sweep config's `ladders` key)")
    cand = _need(fv, "candidate", "a ladder name in the sweep (its sweep config's `ladders` key)")
    law = {"auto": compare.LAWS[0]}.get(fv.law, fv.law)  # --law is fit's flag too; its default means ours
    r = compare.compare(d, base, cand, by=fv.by, law=law, n_boot=fv.n_boot)
    print(compare.format_summary(r), end="")
    name = f"compare_{base}_vs_{cand}" + ("_params" if fv.by == "params" else "")
    for p in plot.save(plot_compare.figure(r), fv.out_dir or os.path.join(d, "figures"), name):
      print(f"wrote {p}")
  elif command == "plot":
    from scaling.laws import plot
    for p in plot.plot_sweep(d, fv.out_dir):
      print(f"wrote {p}")
  elif command == "sample":
    from scaling import sample
    print(sample.sample_run(_need(fv, "workdir", "a run directory written by `scaling train`"), prompt=fv.prompt,
                            temperature=fv.temperature, top_k=fv.top_k, max_tokens=fv.max_tokens,
                            seed=fv.seed))


def usage() -> str:
  lines = ["usage: scaling <command> [flags]", "", "commands:"]
  lines += [f"  {k:<10} {v}" for k, v in COMMANDS.items()]
  lines += ["", "`scaling <command> --help` lists every flag."]
  return "\n".join(lines)


def main() -> None:
  if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
    print(usage())
    sys.exit(0 if len(sys.argv) >= 2 else 2)
  command = sys.argv[1]
  if command not in COMMANDS:
    print(f"scaling: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
    sys.exit(2)
  argv = [f"scaling {command}"] + sys.argv[2:]
  fv = define_flags()
  if {"--help", "--helpfull", "-h", "--helpshort"} & set(argv[1:]):
    print(f"scaling {command}: {COMMANDS[command]}\n\n{fv.get_help()}")
    sys.exit(0)
  try:  # flags, the config file and its --config.* overrides: every error here is the user's
    rest = fv(argv)
    if fv.config is not None:
      fv.config.get("family")  # a config file that failed to load raises here, not at parse time
  except Exception as e:
    if os.environ.get("SCALING_TRACEBACK"):
      raise
    fail(command, flag_error(e, argv))
  if not flags.FLAGS.is_parsed():  # absl logging reads the global flags; it is not configured from the CLI
    flags.FLAGS.mark_as_parsed()
  try:
    _run(command, rest, fv)
  except UsageError as e:
    fail(command, str(e))
  except USER_ERRORS as e:
    # A real bug raising ValueError while training is re-raised by loop.train only after result.json
    # keeps its traceback; SCALING_TRACEBACK=1 shows any traceback here.
    if os.environ.get("SCALING_TRACEBACK") or not _is_user_error(e):
      raise
    fail(command, " ".join(str(e).split()) or type(e).__name__)


def _is_user_error(e: BaseException) -> bool:
  """Our validation raises errors.ConfigError (it names the field); an OS error names its file."""
  return isinstance(e, (errors.ConfigError, OSError))


if __name__ == "__main__":
  main()
