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
    parser.add_argument("--auth-file", default=os.environ.get("STUDIO_AUTH_FILE"),
                        help="a file of user:scrypt-hash lines (make them with: python -m studio hash-password USER), "
                             "so no password sits in a shell history")
    parser.add_argument("--session-hours", type=float, default=12.0,
                        help="a login ends after this many hours without a request (default 12); every login ends "
                             "when the app restarts")
    parser.add_argument("--runs-dir", default=os.environ.get("STUDIO_RUNS_DIR", "runs"),
                        help="folder that holds the run folders")
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="largest data file accepted")
    parser.add_argument("--config", help="a run.json (saved run or hand-written) that prefills every form")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth takes user:password")
    if args.session_hours <= 0:
        parser.error("--session-hours must be above 0")
    return args


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def exposure_warning(args: argparse.Namespace) -> str | None:
    """A warning when the app is reachable from other machines without a password."""
    if args.auth or args.auth_file or (args.host in LOCAL_HOSTS and not args.share):
        return None
    where = "a public share link" if args.share else f"{args.host}:{args.port}"
    return (f"WARNING: the studio is reachable on {where} without a password: anyone who can reach it can upload "
            "data, train, and read or delete runs. Add --auth user:password (or set STUDIO_AUTH).")


def main(argv=None) -> int:
    from studio.machine import few_malloc_heaps  # (light: before gradio and its threads)

    few_malloc_heaps()  # before any of the server's threads exist
    args = parse_args(argv)
    warning = exposure_warning(args)
    if warning:
        print(warning, file=sys.stderr)
    from studio.ui.app import launch  # gradio loads here; torch only when work starts

    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
