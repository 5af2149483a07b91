"""`scaling <command>`: train | sweep | status | plan | fit | plot | sample | baselines.

Configs are ml_collections files: `--config=configs/gpt.py:tiny --config.train.lr=1e-3`.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = {
    "train": "train one run: --config=configs/gpt.py:tiny --workdir=DIR",
    "sweep": "run a ladder: --config=configs/sweeps/gpt_ladder.py --sweep_dir=DIR [--executor=local|pool|slurm]",
    "status": "where a sweep stands (reads only its files): SWEEP_DIR [--watch [--every=SECONDS]]",
    "plan": "runs, FLOPs, memory and device-hours of a sweep before it runs: --config=configs/sweeps/X.py[:arg] "
            "[--chip=h100|h200|a100|v5e|cpu] [--mfu=F]",
    "fit": "fit scaling laws: SWEEP_DIR [--law=auto|power|kaplan|approach1|approach2|approach3]",
    "plot": "write figures: SWEEP_DIR [--out_dir=DIR]",
    "sample": "generate text from a trained GPT: --workdir=RUN --prompt=... [--temperature --top_k --max_tokens --seed]",
    "baselines": "run one classic baseline: --config=configs/baseline.py:tree,64 --workdir=DIR",
}

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file[:arg].", lock_config=False)
flags.DEFINE_string("workdir", None, "Run directory (train, sample, baselines).")
flags.DEFINE_string("sweep_dir", None, "Sweep directory (sweep).")
flags.DEFINE_enum("executor", None, ["local", "pool", "slurm"], "Sweep executor (default: the sweep config's).")
flags.DEFINE_integer("workers", 0, "Processes for --executor=pool (0: the sweep config's).")
flags.DEFINE_bool("retry_failed", False, "Re-run failed / diverged runs of a sweep.")
flags.DEFINE_string("law", "auto", "Scaling law to fit.")
flags.DEFINE_string("x", "params_nonembed", "Size column to fit against (params, params_nonembed, tokens, flops).")
flags.DEFINE_integer("n_boot", 200, "Bootstrap resamples for confidence intervals.")
flags.DEFINE_string("out_dir", None, "Where figures go (default SWEEP_DIR/figures).")
flags.DEFINE_string("prompt", "", "Prompt text for sampling.")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature (0: greedy).")
flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens (0: all).")
flags.DEFINE_integer("max_tokens", 200, "Tokens to generate.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_bool("watch", False, "status: refresh until every run has ended.")
flags.DEFINE_float("every", 5.0, "status --watch: seconds between refreshes.")
flags.DEFINE_enum("chip", "h100", ["h100", "h200", "a100", "v5e", "cpu"], "plan: the accelerator to budget for.")
flags.DEFINE_float("mfu", 0.0, "plan: assumed model-FLOPs utilization (0: the chip's default, see scaling/sweep/plan.py).")
FLAGS = flags.FLAGS


def _need(name: str):
  v = getattr(FLAGS, name)
  if v is None:
    raise app.UsageError(f"--{name} is required")
  return v


def _sweep_dir(argv) -> str:
  if len(argv) < 2:
    raise app.UsageError("SWEEP_DIR is required")
  return argv[1]


def _run(command: str, argv) -> None:
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax / absl INFO lines drown the progress bar
  if command == "train":
    from scaling.train import loop
    cfg = _CONFIG.value if _CONFIG.value is not None else _need("config")
    try:
      loop.prepare(cfg)  # config errors: one line, before anything compiles
    except ValueError as e:
      sys.exit(f"scaling train: {e}")
    result = loop.train(cfg, _need("workdir"))
    print(f"wrote {FLAGS.workdir}/result.json: status={result['status']}")
    if result["status"] != "completed":
      sys.exit(1)
  elif command == "baselines":
    from scaling.baselines import run
    result = run.run(_CONFIG.value, _need("workdir"))
    print(f"wrote {FLAGS.workdir}/result.json: status={result['status']} eval_loss={result.get('eval_loss')}")
  elif command == "sweep":
    from scaling.sweep import downstream, runner
    # A config with a `finetune` section is a pretrain ladder followed by fine-tuning each member.
    entry = downstream.main if _CONFIG.value is not None and _CONFIG.value.get("finetune") else runner.main
    entry(_CONFIG.value, _need("sweep_dir"), executor=FLAGS.executor, workers=FLAGS.workers,
          retry_failed=FLAGS.retry_failed)
  elif command in ("status", "plan"):
    try:
      if command == "status":
        from scaling.sweep import status  # reads files only: no jax
        status.main(_sweep_dir(argv), FLAGS.watch, FLAGS.every)
      else:
        from scaling.sweep import plan
        plan.main(_CONFIG.value if _CONFIG.value is not None else _need("config"), FLAGS.chip, FLAGS.mfu)
    except (ValueError, FileNotFoundError) as e:
      print(f"scaling {command}: {e}", file=sys.stderr)
      sys.exit(2)
  elif command == "fit":
    from scaling.laws import fit
    d = _sweep_dir(argv)
    res = fit.fit_sweep(d, law=FLAGS.law, x=FLAGS.x, n_boot=FLAGS.n_boot)
    print(fit.format_table(res))
    print(f"wrote {d}/fit.json")
  elif command == "plot":
    from scaling.laws import plot
    for p in plot.plot_sweep(_sweep_dir(argv), FLAGS.out_dir):
      print(f"wrote {p}")
  elif command == "sample":
    from scaling import sample
    print(sample.sample_run(_need("workdir"), prompt=FLAGS.prompt, temperature=FLAGS.temperature,
                            top_k=FLAGS.top_k, max_tokens=FLAGS.max_tokens, seed=FLAGS.seed))


def usage() -> str:
  lines = ["usage: scaling <command> [flags]", "", "commands:"]
  lines += [f"  {k:<10} {v}" for k, v in COMMANDS.items()]
  lines += ["", "`scaling <command> --helpfull` lists every flag."]
  return "\n".join(lines)


def main() -> None:
  if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
    print(usage())
    sys.exit(0 if len(sys.argv) >= 2 else 2)
  command = sys.argv[1]
  if command not in COMMANDS:
    print(f"scaling: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
    sys.exit(2)
  app.run(lambda argv: _run(command, argv), argv=[f"scaling {command}"] + sys.argv[2:])


if __name__ == "__main__":
  main()
