"""A promotion killed (SIGKILL) after its decision is recorded and before `@champion` moves
leaves a recorded decision whose alias did not move, never a champion that moved unrecorded;
the next `promote` takes the lock the dead run held and completes."""

import os
import signal
import subprocess
import sys

from inferloop.flows.promote import promote
from tests.flows.conftest import aliases, register
from tests.flows.test_promote import decision_tags

# The promotion in another process, killed by the kernel at its first alias move: the exact
# point between the decision tags and `@champion` moving.
KILLED_AT_THE_FIRST_ALIAS_MOVE = """
import os, signal
from inferloop.core.registry import Registry
Registry.set_alias = lambda self, alias, version: os.kill(os.getpid(), signal.SIGKILL)
from inferloop.flows.promote import promote
promote()
"""


def test_a_promotion_killed_before_the_alias_moves_has_recorded_its_decision(pool, lake, feed):
    from prefect.settings import PREFECT_API_URL

    old = register(lake, pool.before, "champion")
    new = register(lake, pool.after, "challenger")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THE_FIRST_ALIAS_MOVE],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]

    name = os.environ["INFERLOOP_MODEL_NAME"]
    recorded = decision_tags(lake, name, new)
    assert (recorded["verdict"], recorded["champion_before"]) == ("promote", old)
    assert aliases(lake) == {"champion": old, "challenger": new}

    decision = promote()  # the dead run's lock is freed, and the same evidence decides again
    assert (decision.verdict, decision.challenger_version) == ("promote", new)
    assert aliases(lake) == {"champion": new, "previous_champion": old}
