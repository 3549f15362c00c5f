"""Test bodies run in a child interpreter, one per test module, with the real SDK loaded there.

A native SDK that crashes (a segmentation fault in a driver thread) then fails the one test that
was running, with the child's exit status and its faulthandler output, instead of taking the pytest
worker and the rest of the run with it; and the SDK's threads live and die with the child, not the
worker. The next test gets a fresh child.

Parent: ``with Isolated("tests.drivers.openni_dummy_cases") as child: child.run("case_name")``.
Child (``python -m tests.helpers.isolated MODULE FD``): reads case names on stdin, runs
``MODULE.case_name()`` and answers one JSON line per case on pipe ``FD`` (the SDK's own prints go to
stdout/stderr, kept in a file for a crash report). A case raising ``pytest.skip`` is reported as a skip.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASE_TIMEOUT_S = 120.0                 # generous: a loaded CI machine; the cases bound their own waits


class Isolated:
    def __init__(self, module: str):
        self.module = module
        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: int | None = None
        self._log = tempfile.TemporaryFile()
        self._last = ""                          # the last case the running child answered

    def _start(self) -> subprocess.Popen[bytes]:
        r, w = os.pipe()
        try:
            self._log.seek(0)
            self._log.truncate()
            proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.isolated", self.module, str(w)],
                                    cwd=ROOT, stdin=subprocess.PIPE, stdout=self._log, stderr=self._log,
                                    pass_fds=(w,))
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self._proc, self._replies = proc, r
        return proc

    def _died_after(self, when: str) -> None:
        """Fail if the child died after answering its last case (a native crash a moment later, in a
        thread the case left behind, is exactly what the isolation is for)."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        status, last = proc.returncode, self._last
        self._stop(kill=True)
        if status != 0:
            self._log.seek(0)
            tail = self._log.read()[-4000:].decode(errors="replace")
            how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
            pytest.fail(f"the child running {self.module} died after {last or 'its start'} answered ({how}), "
                        f"noticed {when}; its output:\n{tail}", pytrace=False)

    def run(self, case: str) -> None:
        self._died_after(f"before {case}")
        proc = self._proc if self._proc is not None else self._start()
        assert proc.stdin is not None and self._replies is not None
        try:
            proc.stdin.write(case.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:                           # it died after the last case answered
            line = None
        else:
            line = self._read_line(self._replies, time.monotonic() + CASE_TIMEOUT_S)
        if line is None:                                  # died, or hung past the bound
            self._stop(kill=True)
            status = proc.returncode
            self._log.seek(0)
            tail = self._log.read()[-4000:].decode(errors="replace")
            how = f"killed by signal {-status}" if status is not None and status < 0 else f"exit status {status}"
            pytest.fail(f"the child running {self.module}.{case} ended without an answer ({how}); "
                        f"its output:\n{tail}", pytrace=False)
        reply = json.loads(line)
        self._last = case
        if reply["outcome"] == "skip":
            pytest.skip(reply["detail"])
        if reply["outcome"] != "ok":
            pytest.fail(f"{self.module}.{case} failed in the child:\n{reply['detail']}", pytrace=False)

    @staticmethod
    def _read_line(fd: int, deadline: float) -> bytes | None:
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            buf += chunk
        return buf

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if self._replies is not None:
            os.close(self._replies)
            self._replies = None
        if proc is None:
            return
        if kill:
            proc.kill()
        elif proc.stdin is not None:
            proc.stdin.close()                            # the child leaves at end of input
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._died_after("at the end of the module")
            proc = self._proc
            self._stop()                                  # end of input: the child leaves with status 0
            if proc is not None and proc.returncode != 0:
                self._log.seek(0)
                tail = self._log.read()[-4000:].decode(errors="replace")
                pytest.fail(f"the child running {self.module} ended with status {proc.returncode} after "
                            f"{self._last or 'its start'} answered; its output:\n{tail}", pytrace=False)
        finally:
            self._log.close()


def _answer(fd: int, outcome: str, detail: str = "") -> None:
    os.write(fd, json.dumps({"outcome": outcome, "detail": detail}).encode() + b"\n")


def main(argv: list[str]) -> int:
    import faulthandler
    faulthandler.enable(all_threads=True)
    module, fd = argv[0], int(argv[1])
    mod = importlib.import_module(module)
    for line in sys.stdin:
        name = line.strip()
        fn = getattr(mod, name, None) if name.startswith("case_") else None
        if fn is None:
            _answer(fd, "error", f"no case {name!r} in {module}")
            continue
        try:
            fn()
        except pytest.skip.Exception as exc:
            _answer(fd, "skip", str(exc))
        except BaseException:
            _answer(fd, "error", traceback.format_exc())
        else:
            _answer(fd, "ok")
    os._exit(0)                                           # no SDK teardown at exit (see docs/drivers.md)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
