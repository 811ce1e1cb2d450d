"""`exit_without_teardown`: the trainer's exit keeps what a normal exit does that matters."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A process that leaves unflushed output, a non-daemon thread, an atexit handler and a
# module-level object whose finalizer only interpreter teardown would run.
_SCRIPT = textwrap.dedent(
    """
    import atexit, sys, threading
    from trainer.__main__ import exit_without_teardown

    class Finalized:
        def __del__(self):
            sys.__stdout__.write("torn down\\n")
            sys.__stdout__.flush()

    kept = Finalized()
    release = threading.Event()

    def late_writer():
        release.wait()
        sys.stdout.write("thread done\\n")

    sys.setswitchinterval(1000)  # the thread runs only once this one waits for it
    threading.Thread(target=late_writer).start()
    atexit.register(lambda: sys.stdout.write("atexit ran\\n"))
    sys.stdout.write("buffered line\\n")
    release.set()
    exit_without_teardown(3)
    """
)


def _run() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exit_flushes_output_and_runs_atexit_handlers_with_the_given_code() -> None:
    # Given a process with buffered output and an atexit handler
    # When it exits through exit_without_teardown(3)
    done = _run()

    # Then its output reached the pipe, its handlers ran and its code is 3
    assert done.returncode == 3, done.stderr
    assert "buffered line" in done.stdout
    assert "atexit ran" in done.stdout


def test_exit_waits_for_non_daemon_threads() -> None:
    # Given a non-daemon thread still to write its line when the exit starts
    # When the process exits through exit_without_teardown
    done = _run()

    # Then the thread finished and its output was flushed
    assert "thread done" in done.stdout, done.stderr


def test_exit_skips_the_interpreter_teardown_of_modules() -> None:
    # Given a module-level object whose finalizer runs only when modules are torn down
    # When the process exits through exit_without_teardown
    done = _run()

    # Then the teardown, which freed torch and transformers object by object, did not run
    assert "torn down" not in done.stdout, done.stderr
