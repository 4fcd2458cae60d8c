"""The ``magnetkit`` command line. Known errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from magnetkit import __version__
from magnetkit.errors import MagnetkitError, RecipeError

EPILOG = """examples:
  magnetkit plugins
  magnetkit components --kind scheduler
  magnetkit recipes
  magnetkit validate recipes/magnet-small-10secs.yaml sampler.top_p=0.8
  magnetkit generate "a fast high square-wave arpeggio" -o out/
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magnetkit", description="MAGNeT audio generation toolkit.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"magnetkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = add_command(sub, "plugins", "list loaded plugins with versions and hooks", cmd_plugins,
             "magnetkit plugins\n  magnetkit plugins --json")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add_command(sub, "components", "list registered components", cmd_components,
             "magnetkit components\n  magnetkit components --kind sampler")
    p.add_argument("--kind", choices=_kinds(), help="only this kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    add_command(sub, "recipes", "list shipped and plugin-provided recipes", cmd_recipes, "magnetkit recipes")

    p = add_command(sub, "validate", "validate a recipe with overrides", cmd_validate,
             "magnetkit validate recipes/magnet-small-10secs.yaml sampler.top_p=0.8\n"
             "  magnetkit validate magnet-small-10secs generation.decoding_steps=[4,2,2,2]")
    p.add_argument("recipe", help="recipe file or shipped recipe name")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. sampler.top_p=0.8")
    p.add_argument("--show", action="store_true", help="print the resolved recipe")

    from magnetkit.plugins import load_plugins

    from magnetkit.commands import CORE_COMMANDS

    for add_commands in CORE_COMMANDS:
        add_commands(sub)
    load_plugins().hook.register_commands(subparsers=sub)
    return parser


def add_command(subparsers: argparse._SubParsersAction, name: str, help_text: str,
                func: Callable[[argparse.Namespace], int], examples: str) -> argparse.ArgumentParser:
    """Add a sub-command with magnetkit's help layout; plugins use it from ``register_commands``."""
    p = subparsers.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                       epilog=f"examples:\n  {examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def _kinds() -> list[str]:
    from magnetkit.registry import KINDS

    return list(KINDS)


# ------------------------------------------------------------------------------- commands
def cmd_plugins(args: argparse.Namespace) -> int:
    """Print the loaded plugins."""
    from magnetkit.plugins import plugin_infos

    infos = plugin_infos()
    if args.json:
        print(json.dumps([{"name": i.name, "distribution": i.distribution, "version": i.version,
                           "hooks": list(i.hooks)} for i in infos], indent=2))
        return 0
    if not infos:
        print("no plugins loaded (is MAGNETKIT_PLUGINS set?)")
    for i in infos:
        print(f"{i.name:<14} {i.distribution or '-'} {i.version or '-':<8} {', '.join(i.hooks) or '(no hooks)'}")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    """Print the registered components."""
    from magnetkit.plugins import plugin_infos
    from magnetkit.registry import get_registry

    versions = {i.name: i.version for i in plugin_infos()}
    specs = get_registry().all(args.kind)
    if args.json:
        print(json.dumps([{"name": s.name, "kind": s.kind, "plugin": s.plugin, "version": versions.get(s.plugin),
                           "description": s.description, "parameters": s.config.model_json_schema().get("properties", {})}
                          for s in specs], indent=2))
        return 0
    for s in specs:
        plugin = f"{s.plugin} {versions.get(s.plugin) or ''}".strip()
        print(f"{s.kind:<12} {s.name:<14} {plugin:<20} {s.description}")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    """Print the shipped and plugin-provided recipes with their purpose."""
    from magnetkit.recipe import first_comment, recipe_dirs

    for folder in recipe_dirs():
        for path in sorted(folder.glob("*.yaml")):
            print(f"{path.stem:<28} {first_comment(path)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a recipe and its overrides."""
    import yaml

    from magnetkit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.show:
        print(yaml.safe_dump(recipe.to_dict(), sort_keys=False), end="")
    else:
        print(f"ok: {args.recipe}")
    return 0


# ---------------------------------------------------------------------------------- entry
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that closed the pipe surfaces here, in the handler below
        return code
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MagnetkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (`magnetkit recipes | head`): not an error. Point stdout at
        # devnull so the interpreter's final flush does not raise again (Python docs, SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
