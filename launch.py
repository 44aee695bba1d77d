"""Start the studio: `python launch.py` (127.0.0.1:7860, embedded default model, sample data preselected)."""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start the Studio web app.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    parser.add_argument("--auth", default=os.environ.get("STUDIO_AUTH"),
                        help="user:password required to open the app (or set STUDIO_AUTH)")
    parser.add_argument("--runs-dir", default=os.environ.get("STUDIO_RUNS_DIR", "runs"),
                        help="folder that holds the run folders")
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="largest data file accepted")
    parser.add_argument("--config", help="a run.json (saved run or hand-written) that prefills every form")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth takes user:password")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from studio.ui.app import launch
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("studio.ui"):
            raise
        return _engine_only(args)
    return launch(args)


def _engine_only(args: argparse.Namespace) -> int:
    """Until the web UI lands: show what the engine sees in the sample data and how to drive it headless."""
    from studio.cli import main as cli

    print("Studio engine (the web UI is not built yet). Sample data as the studio sees it:\n")
    cli(["inspect", os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "sample_forum_posts.csv")])
    print("\nHeadless commands: python -m studio --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
