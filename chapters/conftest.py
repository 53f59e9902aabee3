"""pytest's settings for the notebook passes (nbval runs every chapter as a test).

A kernel that dies before it answers its first message fails every cell of its chapter,
although no cell ran. That happened once in CI, on the first chapter of the clothes'
pass, started in the same second as the digits' pass: its kernel died at start and nbval
sends a kernel's stderr to /dev/null, so the reason was lost. Here a kernel that dies at
start is started again (at most `ATTEMPTS` times in all), and the dead one's stderr is
printed, so a next time says why. A cell that fails is never run again: only the start
is retried.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import nbval.kernel

ATTEMPTS = 3


def retrying(start: Callable[..., Any], attempts: int = ATTEMPTS, pause: float = 2.0):
    """`start` (nbval's `start_new_kernel`), tried up to `attempts` times while the
    kernel dies or does not answer at start; the last failure is raised."""

    def start_new_kernel(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, attempts + 1):
            with tempfile.TemporaryFile() as err:
                try:
                    return start(*args, **{**kwargs, "stderr": err})
                except RuntimeError as failure:
                    err.seek(0)
                    said = err.read().decode(errors="replace")[-4000:]
                    print(
                        f"\nkernel start {attempt} of {attempts} failed ({failure}); "
                        f"its stderr:\n{said or '(empty)'}",
                        file=sys.stderr,
                    )
                    if attempt == attempts:
                        raise
            time.sleep(pause)  # let whatever raced with it (a port, a file) settle

    return start_new_kernel


# RunningKernel looks the name up in nbval.kernel when it starts a chapter's kernel.
nbval.kernel.start_new_kernel = retrying(nbval.kernel.start_new_kernel)
