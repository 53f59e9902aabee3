"""Execute one notebook (no output written); print its wall time and the kernel's peak
memory.

Used by bench.py, one child process per run, so the peak memory belongs to this notebook
alone.
"""

import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

path = Path(sys.argv[1])
nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
# A cell may run long on a shared machine: the limit only catches hangs. (A bench run
# died in chapter 7's cold run while the machine was shared, most likely at the old 900
# s limit; its error was not kept, see bench.py.)
NotebookClient(
    nb,
    timeout=1800,
    kernel_name="python3",
    resources={"metadata": {"path": str(path.parent)}},
).execute()
seconds = time.perf_counter() - start
# The kernel has exited and been waited for: its peak RSS (KiB on Linux) is in
# RUSAGE_CHILDREN.
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{seconds:.3f} {peak_kib / 1024:.1f}")
