"""`seedvr-desktop train prepare|run|export`: fine-tune SeedVR on your own footage.

    train prepare DATA... --model-dir MODEL --cache DIR [--size PX] [--frames F] [--seed N]
    train run --model-dir MODEL --cache DIR --out RUN [--config FILE] [--resume] [--lora R]
    train export RUN --out MODEL_DIR [--merge-lora]

Several processes: `torchrun --nproc-per-node N -m seedvr_desktop train run ...` (DDP; --fsdp
shards big models). Torch loads only inside the handlers, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from seedvr_desktop.cli_args import non_negative_int, number, positive_int
from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import ExclusiveLock, LockBusy

# Held while a run writes its folder (removed on release).
RUN_LOCK = ".run.lock"


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` command (with prepare, run and export) to the CLI's subparsers."""
    p = subparsers.add_parser("train", help="fine-tune a SeedVR model on your own clips")
    sub = p.add_subparsers(dest="train_command", metavar="{prepare,run,export}")
    p.set_defaults(func=_cmd_help, train_parser=p)

    pr = sub.add_parser("prepare", help="degrade clips and cache their VAE latents")
    pr.add_argument("data", nargs="+", type=Path, metavar="DATA",
                    help="folders (searched recursively) or files of clips and images")
    pr.add_argument("--model-dir", type=Path, required=True, metavar="MODEL")
    pr.add_argument("--cache", type=Path, required=True, metavar="DIR")
    pr.add_argument("--size", type=positive_int, action="append", metavar="PX",
                    help="square crop side, a multiple of 16 (repeat for several)")
    pr.add_argument("--frames", type=positive_int, action="append", metavar="F",
                    help="frames per clip sample, 4n+1 (repeat, one per --size)")
    pr.add_argument("--config", type=Path, metavar="FILE",
                    help="prepare every stage of this training config")
    pr.add_argument("--per-clip", type=positive_int, default=4, metavar="N",
                    help="samples cut from each clip (default 4)")
    pr.add_argument("--seed", type=non_negative_int, default=0, metavar="N")
    pr.add_argument("--preview", type=Path, metavar="DIR",
                    help="write a few LQ|HQ side-by-side PNGs here")
    pr.set_defaults(func=cmd_prepare)

    ru = sub.add_parser("run", help="train on a prepared cache")
    ru.add_argument("--model-dir", type=Path, required=True, metavar="MODEL")
    ru.add_argument("--cache", type=Path, required=True, metavar="DIR")
    ru.add_argument("--out", type=Path, required=True, metavar="RUN",
                    help="folder for checkpoint.safetensors and metrics.jsonl")
    ru.add_argument("--config", type=Path, metavar="FILE", help="TOML training config")
    ru.add_argument("--resume", action="store_true", help="continue from RUN's checkpoint")
    ru.add_argument("--frames", type=positive_int, help="one stage: frames (overrides config)")
    ru.add_argument("--size", type=positive_int, help="one stage: crop size")
    ru.add_argument("--steps", type=positive_int, help="one stage: optimiser steps")
    ru.add_argument("--until", type=positive_int, metavar="STEP",
                    help="stop after this global step (resume later)")
    ru.add_argument("--batch", type=positive_int, help="global batch size")
    ru.add_argument("--micro-batch", type=positive_int, dest="micro_batch",
                    help="samples per DiT call; gradients accumulate over calls")
    ru.add_argument("--lr", type=number)
    ru.add_argument("--warmup-steps", type=non_negative_int, dest="warmup_steps")
    ru.add_argument("--grad-clip", type=number, dest="grad_clip")
    ru.add_argument("--ema-decay", type=number, dest="ema_decay")
    ru.add_argument("--text-dropout", type=number, dest="text_dropout")
    ru.add_argument("--lora", type=non_negative_int, dest="lora_rank", metavar="RANK",
                    help="train a LoRA adapter of this rank instead of all weights")
    ru.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    ru.add_argument("--no-grad-checkpoint", action="store_const", const=False,
                    dest="grad_checkpoint", help="keep activations (faster, more memory)")
    ru.add_argument("--fsdp", action="store_const", const=True, help="shard over processes")
    ru.add_argument("--save-every", type=positive_int, dest="save_every")
    ru.add_argument("--seed", type=non_negative_int)
    ru.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    ru.set_defaults(func=cmd_run)

    ex = sub.add_parser("export", help="write a model folder from a training run")
    ex.add_argument("run", type=Path, metavar="RUN")
    ex.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    ex.add_argument("--model-dir", type=Path, metavar="MODEL",
                    help="the base model (default: the one the run used)")
    ex.add_argument("--merge-lora", action="store_true",
                    help="bake the LoRA adapter into dit.safetensors")
    ex.add_argument("--raw", action="store_true", help="export the raw weights, not the EMA")
    ex.set_defaults(func=cmd_export)


register = add_train_parser  # the name cli.COMMAND_MODULES calls


def _cmd_help(args: argparse.Namespace) -> int:
    args.train_parser.print_help()
    return 0


def _shapes(args: argparse.Namespace) -> list[tuple[int, int]]:
    from seedvr_desktop.training.config import Stage, load_config

    if args.config is not None:
        if args.size or args.frames:
            raise UserError("give --config or --size/--frames, not both")
        return [(s.frames, s.size) for s in load_config(args.config).stages]
    sizes = args.size or [256]
    frames = args.frames or [5] * len(sizes)
    if len(frames) == 1 and len(sizes) > 1:
        frames = frames * len(sizes)
    if len(sizes) == 1 and len(frames) > 1:
        sizes = sizes * len(frames)
    if len(frames) != len(sizes):
        raise UserError("give one --frames per --size")
    for i, (f, s) in enumerate(zip(frames, sizes)):
        Stage(f, s, 1).validate(i)
    return list(zip(frames, sizes))


def cmd_prepare(args: argparse.Namespace) -> int:
    from seedvr_desktop.training.session import run_prepare

    shapes = _shapes(args)
    manifest = run_prepare(args.data, args.model_dir, args.cache, shapes=shapes, seed=args.seed,
                           per_clip=args.per_clip, preview=args.preview,
                           progress=lambda line: print(f"  {line}", flush=True))
    buckets = ", ".join(f"{k}: {len(v)}" for k, v in sorted(manifest["buckets"].items()))
    print(f"{args.cache}: {len(manifest['samples'])} samples (latent T x h x w: {buckets})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import torch

    from seedvr_desktop.training.config import load_config
    from seedvr_desktop.training.session import build_trainer

    keys = ("frames", "size", "steps", "batch", "micro_batch", "lr", "warmup_steps", "grad_clip",
            "ema_decay", "text_dropout", "lora_rank", "precision", "grad_checkpoint", "fsdp",
            "save_every", "seed")
    cfg = load_config(args.config, {k: getattr(args, k) for k in keys})
    device = torch.device("cpu") if args.cpu else None
    lock = _lock_run_folder(args.out)
    try:
        return _train(args, cfg, build_trainer(args.model_dir, args.cache, args.out, cfg,
                                               resume=args.resume, device=device))
    finally:
        if lock is not None:
            lock.release()


def _lock_run_folder(out: Path) -> ExclusiveLock | None:
    """One run writes a run folder: a second `train run` on it is refused, and a resumed run
    may delete the temps a killed one left there. Held by the main process (rank 0) only."""
    if os.environ.get("RANK", "0") != "0":
        return None
    try:
        out.mkdir(parents=True, exist_ok=True)
        return ExclusiveLock(out / RUN_LOCK).acquire()
    except LockBusy:
        raise UserError(f"another training run is writing to {out}") from None
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None


def _train(args: argparse.Namespace, cfg: Any, trainer: Any) -> int:
    main = trainer.info.is_main
    if main:
        print(f"training {cfg.total_steps} steps in {len(cfg.stages)} stage(s) on "
              f"{trainer.device}; from step {trainer.step}", flush=True)
    last = None
    for r in trainer.steps(args.until):
        last = r
        if main and (r.step % cfg.log_every == 0):
            print(f"step {r.step} stage {r.stage + 1} loss {r.loss:.5f}", flush=True)
    if main:
        where = trainer.out / "checkpoint.safetensors"
        print(f"saved {where}" + (f" at step {last.step}" if last else " (nothing to do)"))
    from seedvr_desktop.training.distributed import shutdown

    shutdown(trainer.info)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from seedvr_desktop.training.export import export

    out = export(args.run, args.out, model_dir=args.model_dir, merge_lora=args.merge_lora,
                 use_ema=not args.raw)
    print(f"exported {out}")
    return 0
