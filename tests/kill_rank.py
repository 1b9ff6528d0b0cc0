"""A torchrun entry for tests/test_distributed.py: `eagan ARGS...`, except that on torchrun's
first attempt rank 1 kills itself with SIGKILL after $EAGAN_TEST_KILL_AFTER stage-2 pair
iterations (a node lost mid-round); torchrun's --max-restarts then re-runs the same command.
With $EAGAN_TEST_HANG_S, a worker still running after that many seconds prints every thread's
stack and exits, so that a hang fails the test with the place where it hangs."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from typing import Any

if os.environ.get("EAGAN_TEST_HANG_S"):
    faulthandler.dump_traceback_later(int(os.environ["EAGAN_TEST_HANG_S"]), exit=True)

from runtime import search
from runtime.cli import main

after = int(os.environ.get("EAGAN_TEST_KILL_AFTER", "0"))
first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
if after and first_attempt and os.environ.get("RANK") == "1":
    step = search.SearchStage._pair_step
    count = [0]

    def counting(self: Any, j: int, job: dict[str, Any]) -> tuple[float, float]:
        count[0] += 1
        if count[0] == after:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, j, job)

    search.SearchStage._pair_step = counting  # type: ignore[method-assign]

main(sys.argv[1:])
