"""The trainer's messages: records on the ``zoo.finetune`` logger, emitted by the first process only.

Every message a run has to say (``epoch 1/5: ...``, ``resumed from epoch 2, step 0``, the
confusion matrix) is an INFO record on `LOGGER`, emitted on rank 0 only, so ``torchrun`` with
several processes says each thing once. A run with ``verbose=True`` (the default, and ``zoo
finetune``) marks its records for the console: `ConsoleHandler` prints those, as plain lines, to
the standard output of the moment. Records also reach the handlers a program configures through
`logging`; pass ``verbose=False`` to leave them to those alone.
"""
from __future__ import annotations

import logging
import sys

from .distributed import Context

LOGGER = logging.getLogger("zoo.finetune")
TO_CONSOLE = "zoo_console"  # the record attribute a verbose run sets


class ConsoleHandler(logging.Handler):
    """Prints the records a verbose run marked, as plain lines on the current ``sys.stdout``.

    The stream is looked up for every record, so redirecting or capturing standard output
    (``contextlib.redirect_stdout``, pytest's capsys) sees the lines.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(lambda record: bool(getattr(record, TO_CONSOLE, False)))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stdout, flush=True)
        except Exception:  # noqa: BLE001  # logging's rule: a failing handler reports and carries on
            self.handleError(record)


def say(context: Context, message: str, *, verbose: bool) -> None:
    """Log `message` at INFO on the first process; with `verbose`, also print it."""
    if context.is_main:
        LOGGER.info(message, extra={TO_CONSOLE: verbose}, stacklevel=3)  # the trainer line that said it


def _install() -> None:
    """One console handler on the logger, and INFO as its level unless a program chose one."""
    if not any(isinstance(handler, ConsoleHandler) for handler in LOGGER.handlers):
        LOGGER.addHandler(ConsoleHandler())
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)


_install()
