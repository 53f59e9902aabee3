"""chapters/conftest.py: a chapter's kernel that dies at start is started again, and
says why it died; anything else is not retried."""

import importlib.util
from pathlib import Path

import nbval.kernel
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def conftest(monkeypatch):
    """The chapters' conftest, loaded as a module; nbval's start is put back after."""
    monkeypatch.setattr(nbval.kernel, "start_new_kernel", nbval.kernel.start_new_kernel)
    spec = importlib.util.spec_from_file_location(
        "chapters_conftest", ROOT / "chapters" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_kernel_that_dies_at_start_is_started_again_and_its_stderr_shown(
    conftest, capsys
):
    calls = []

    def start(kernel_name, stderr):
        calls.append(kernel_name)
        if len(calls) == 1:
            stderr.write(b"zmq.error.ZMQError: Address already in use")
            stderr.flush()
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "kernel"

    assert conftest.retrying(start, pause=0)(kernel_name="k", stderr=None) == "kernel"
    assert calls == ["k", "k"]
    said = capsys.readouterr().err
    assert "kernel start 1 of 3 failed (Kernel died before replying" in said
    assert "Address already in use" in said


def test_the_last_failure_is_raised_and_other_errors_are_not_retried(conftest):
    calls = []

    def dies(**kwargs):
        calls.append(1)
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    with pytest.raises(RuntimeError, match="respond in 60"):
        conftest.retrying(dies, attempts=3, pause=0)()
    assert len(calls) == 3

    def broken(**kwargs):
        calls.append(2)
        raise KeyError("no such kernel")

    with pytest.raises(KeyError):
        conftest.retrying(broken, pause=0)()
    assert calls.count(2) == 1


def test_the_patched_start_still_starts_a_real_kernel(conftest):
    # loading the conftest put its retrying start in nbval's place
    assert (
        nbval.kernel.start_new_kernel.__qualname__
        == "retrying.<locals>.start_new_kernel"
    )
    km, kc = nbval.kernel.start_new_kernel(
        kernel_name=nbval.kernel.CURRENT_ENV_KERNEL_NAME, stderr=None, cwd=str(ROOT)
    )
    try:
        assert km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
