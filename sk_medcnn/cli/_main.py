"""``main``: run one command, its errors as one line and an exit code."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from ._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    UsageError,
    _warn,
)
from ._parser import _check_spelling, _subcommand_parser, build_parser


@contextlib.contextmanager
def _console(verbose: bool) -> Iterator[list[str]]:
    """Route logs and warnings of one command to stderr, one line each.

    sk_medcnn's own log lines always show. Other libraries' log records (e.g.
    pydicom's complaints about a corrupt file) show only with ``--verbose``.
    Warnings are collected and printed once each when the command ends; when it
    fails, its one error line is printed alone (with ``--verbose``, everything).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sk-medcnn: %(message)s"))
    root = logging.getLogger()
    ours = logging.getLogger("sk_medcnn")
    saved = (root.level, ours.level, ours.propagate)
    quiet = logging.NullHandler()  # keeps logging's last-resort printer away
    if verbose:
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
    else:
        root.addHandler(quiet)
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    messages: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield messages
            finally:
                for warning in caught:
                    text = str(warning.message)
                    if text not in messages:
                        messages.append(text)
    finally:
        root.removeHandler(handler)
        root.removeHandler(quiet)
        ours.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        ours.propagate = saved[2]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sk-medcnn`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    exit_code : int
        0 on success, 1 on an error, 2 on a usage error, 130 when interrupted.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _check_spelling(parser, argv)
        args = parser.parse_args(argv)
        command = _subcommand_parser(parser, args.command)
        if args.command == "train" and args.output is None:
            command.error("the following arguments are required: --output")
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    from ..exceptions import ArchitectureNotFoundError

    failed = True
    messages: list[str] = []
    try:
        with _console(args.verbose) as messages:
            code = int(args.handler(args))
        failed = False
        return code
    except KeyboardInterrupt:
        print("sk-medcnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as error:  # a bad option value: as argparse reports one
        if args.verbose:
            traceback.print_exc()
        command.print_usage(sys.stderr)
        print(f"sk-medcnn {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (
        CommandError,
        ValueError,
        TypeError,
        OSError,
        ImportError,
        ArchitectureNotFoundError,
        MemoryError,
    ) as error:
        if args.verbose:
            traceback.print_exc()
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if isinstance(error, OSError) and error.filename and not message:
            message = f"{error.filename}: {error.strerror}"
        if isinstance(error, MemoryError):
            message = f"out of memory ({message or 'MemoryError'})"
        print(
            f"sk-medcnn {args.command}: error: {message or type(error).__name__}",
            file=sys.stderr,
        )
        return error.exit_code if isinstance(error, CommandError) else EXIT_ERROR
    finally:
        if not failed or args.verbose:
            for text in messages:
                _warn(text)
