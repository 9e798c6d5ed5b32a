"""TensorFlow's start-up chatter kept off the terminal, with every real warning let through.

TensorFlow's C++ core writes informational lines to the process's standard error (file
descriptor 2) as it is imported — ``oneDNN custom operations are on``, absl's ``All log messages
before absl::InitializeLog() is called`` — whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and so does
a Jupyter kernel about its transport. They are not warnings, but they look like errors in red.
:func:`quiet_native_stderr` puts a pipe in place of descriptor 2 (so that child processes, such
as a notebook's kernel, inherit it too) and copies each line to the real standard error unless
it is one of :data:`NOISE`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["NOISE", "is_noise", "quiet_kernel_shutdown", "quiet_native_stderr"]

#: Lines that carry no warning: absl / TensorFlow INFO lines (``I1201 12:00:00.000 123 file.cc:45] ...``,
#: with the one continuation line TensorFlow writes), absl's note before its logging is set up, and
#: the kernel's note about its local TCP transport.
NOISE: tuple[re.Pattern[str], ...] = (
    re.compile(r"^I\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\."),
    # the second line of TensorFlow's INFO note on the CPU instructions it was not built for
    re.compile(
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$"
    ),
)


def is_noise(line: str) -> bool:
    """Whether one line of standard error is start-up chatter (see :data:`NOISE`)."""
    return any(pattern.search(line.rstrip("\r\n")) for pattern in NOISE)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """While inside, lines written to descriptor 2 (by C++ code or child processes) are filtered.

    Python's own ``sys.stderr`` writes go the same way (they end up on descriptor 2), so their
    order is kept. On leaving, the real descriptor 2 is put back and the last lines are copied.
    """
    sys.stderr.flush()
    real = os.dup(2)
    reading, writing = os.pipe()
    os.dup2(writing, 2)
    os.close(writing)

    copy_to = os.dup(real)  # the copier's own descriptor of the real standard error

    def copy() -> None:
        with os.fdopen(reading, "rb") as source, os.fdopen(copy_to, "wb", buffering=0) as target:
            for raw in source:
                if not is_noise(raw.decode("utf-8", errors="replace")):
                    target.write(raw)

    thread = threading.Thread(target=copy, name="quiet-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer in this process: the copier sees the end
        os.close(real)
        thread.join(timeout=5)


def _not_a_closed_socket(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (type(error).__name__ == "ZMQError" and getattr(error, "errno", None) == errno.ENOTSOCK)


def quiet_kernel_shutdown(logger_name: str = "IPKernelApp") -> None:
    """In a Jupyter kernel: leave out the traceback of a reply sent on a socket already closed.

    A run stopped in the middle of a cell (Ctrl-C, SIGTERM) shuts its kernel down while that cell
    is running; when the cell ends, the kernel's reply meets the closed socket and the kernel logs
    ``ZMQError: Socket operation on non-socket`` with its traceback. Nothing is lost: the run is
    over, and the runner says so. A socket is closed only by the kernel's shutdown, so every other
    error of the kernel is still logged.
    """
    logging.getLogger(logger_name).addFilter(_not_a_closed_socket)
