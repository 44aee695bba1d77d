"""Start → first step → adapter saved → evaluated, on one GPU, as the web app does it: one process that imports the
training stack ahead at launch (``door.training.warm_up``), checks the data as the Data tab does, then Start
(``door.training.start``) and Evaluate (``door.evaluation.evaluate``, the model kept in memory), each timed from the
click; the run's own phases from run.json. Then the same again in the same process (a second run: nothing left to
import). ``--cold``: no import ahead (the first Start pays it), to measure what the launch-time import saves.

    python3 bench/device/start_to_evaluated.py --data F --runs /tmp/ste --json $OUT/start.json [--cold] [--runs-n 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def one_run(config, runs: Path, index: int) -> dict:
    from studio.door import evaluation, training

    clicked = time.time()
    started = training.start(config, runs_dir=runs)
    job = started.job
    job.wait()
    saved = time.time()
    evaluated = evaluation.evaluate(started.run.name, runs_dir=runs, log=lambda line: None, progress=lambda m, f: print(
        f"evaluate +{time.time() - saved:.1f} s {f:.2f} {m}", flush=True))
    done = time.time()
    records = [json.loads(line) for line in (started.run.path / "metrics.jsonl").read_text().splitlines()]
    first_step = next((r["time"] for r in records if r.get("kind") == "train"), None)
    record = json.loads((started.run.path / "run.json").read_text())
    status = json.loads((started.run.path / "status.json").read_text())
    report = evaluated.report
    return {
        "run": index, "name": started.run.name, "state": job.state,
        "start_to_first_step_s": round(first_step - clicked, 1) if first_step else None,
        "start_to_adapter_saved_s": round(saved - clicked, 1),
        "evaluate_s": round(done - saved, 1), "start_to_evaluated_s": round(done - clicked, 1),
        "phases_s": record.get("phases"), "steps": status.get("step"), "adapter_step": status.get("adapter_step"),
        "val_a_macro_f1": report["val_a"]["macro_f1"], "chosen": report.get("chosen", {}).get("name"),
        "chosen_val_a_macro_f1": report.get("chosen", {}).get("val_a", {}).get("macro_f1"),
        "backend": record.get("backend", {}).get("name") if isinstance(record.get("backend"), dict) else None,
    }


def as_the_web_app(data: str, *, ahead: bool = True, model: str | None = None,
                   max_steps: int | None = None) -> tuple[object, float]:
    """What the web app does before Start: the training stack imported ahead at launch (``ahead``), the file's
    config (a smoke test's model and steps), the Data tab's check (it waits for the import ahead, if any), then the
    import finished. Returns (config, the data check's seconds)."""
    from studio.door import data as door_data
    from studio.door import training
    from studio.door.labels import config_for_file

    thread = training.warm_up() if ahead else None
    config = config_for_file(data)
    if model:
        config = config.replace({"model": {"name": model}})
    if max_steps:
        config = config.replace({"train": {"max_steps": max_steps, "time_budget_minutes": 0}})
    checked = time.time()
    door_data.check_data(config, config.model.name)
    checked_s = time.time() - checked
    if thread is not None:
        thread.join()
    return config, checked_s


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", default="/tmp/start-to-evaluated")
    parser.add_argument("--json", required=True)
    parser.add_argument("--runs-n", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="no import ahead at launch")
    parser.add_argument("--model", default=None, help="another model (a smoke test: a tiny model folder)")
    parser.add_argument("--max-steps", type=int, default=None, help="a smoke test's few steps")
    args = parser.parse_args(argv)
    launched = time.time()
    config, checked_s = as_the_web_app(args.data, ahead=not args.cold, model=args.model, max_steps=args.max_steps)
    out: dict = {"cold": args.cold, "data": args.data, "runs": [], "data_check_s": round(checked_s, 1),
                 "launch_to_stack_imported_s": round(time.time() - launched, 1)}
    path = Path(args.json)
    for index in range(args.runs_n):
        out["runs"].append(one_run(config, Path(args.runs), index))
        path.write_text(json.dumps(out, indent=2))
        print(json.dumps(out["runs"][-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
