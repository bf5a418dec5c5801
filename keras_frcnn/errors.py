"""User-facing errors and the command-line wrapper that turns them into one-line messages."""

from __future__ import annotations

import sys
from typing import Callable, Mapping, Sequence

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a value): printed as one line, exit 2."""


class AnnotationError(UserError):
    """A problem at a given place of an annotation file: ``path:line: message``."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class OptionError(UserError):
    """A bad option value, in the words of whoever gave it: a library caller reads the parameter
    names (``num_epochs must be at least 1``), a command's user its flags (``--num_epochs must be
    at least 1``; :func:`run_cli` renames them).

    ``template`` names the options ``{0}``, ``{1}``... (``options``) and any other value by keyword
    (``values``, inserted as they are).
    """

    def __init__(self, template: str, *options: str, **values):
        self.template, self.options, self.values = template, options, values
        super().__init__(template.format(*options, **values))

    def named(self, flags: Mapping[str, str]) -> str:
        """The message with each option given its name in ``flags`` (option -> flag)."""
        return self.template.format(*(flags.get(option, option) for option in self.options), **self.values)


def flag_names(parser, **aliases: str) -> dict[str, str]:
    """Option -> flag for :func:`run_cli`: each argparse destination's longest flag
    (``num_epochs`` -> ``--num_epochs``), plus ``aliases`` for parameters the flags name
    differently (``lr_drops="--lr-drop-at"``)."""
    flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions if action.option_strings}
    return {**flags, **aliases}


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            flags: Mapping[str, str] | None = None) -> int:
    """Run ``main(argv)``; report a :class:`UserError` or Ctrl-C as one line on stderr, no
    traceback. ``flags`` (:func:`flag_names`) renames the options of an :class:`OptionError`."""
    try:
        code = main(argv)
    except OptionError as err:
        print(f"error: {err.named(flags or {})}", file=sys.stderr)
        return EXIT_USER_ERROR
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
