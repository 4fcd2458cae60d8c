"""magnetkit built-in plugin: ``magnetkit web``, a Gradio page to generate audio in a browser.

Gradio is an optional extra (``pip install 'magnetkit[web]'``) and takes seconds to import, so it
is imported only when the command runs; ``magnetkit --help`` stays fast. The page's logic that
needs no Gradio (model cache, settings, outputs) lives in `magnetkit_web.service`.
"""

from __future__ import annotations

import argparse

from magnetkit import hookimpl

__all__ = ["register_commands"]

EXAMPLES = ("magnetkit web                                   (the embedded default model, http://127.0.0.1:7860)\n"
            "  magnetkit web magnet-small-10secs --port 8080\n"
            "  magnetkit web path/to/checkpoint --host 0.0.0.0   (reachable from other machines)")


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``web``."""
    from magnetkit import add_command

    p = add_command(subparsers, "web", "serve a web page to generate audio in a browser (Gradio)", run, EXAMPLES)
    p.add_argument("source", nargs="?", metavar="SOURCE",
                   help="the model the page starts with: a recipe, a checkpoint folder or a hub id "
                        "(default: the embedded default model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    p.add_argument("--share", action="store_true",
                   help="also serve through a public gradio.live link (needs the internet)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")


def run(args: argparse.Namespace) -> int:
    """Load the starting model, then serve the page until interrupted."""
    from magnetkit_web.app import serve

    return serve(args)
