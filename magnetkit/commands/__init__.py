"""Core CLI commands that live in their own modules; each exposes ``add_commands(subparsers)``."""

from magnetkit.commands import eval as eval_command
from magnetkit.commands import generate, sweep, train

CORE_COMMANDS = [generate.add_commands, train.add_commands, eval_command.add_commands, sweep.add_commands]
