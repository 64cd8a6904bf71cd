"""kill -9 inside an approved tool, then a restart under a policy that no longer gates it:
the journal covers every call that has an approval record, not only the tools the policy
gates now, so the call is reported "outcome unknown" and never run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.test_crash import CHANNEL, click, open_trial, ran_notices, said
from tests.support import durable_tools
from tests.support.botproc import deployment
from tests.support.pg import BACKENDS, database_url


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_call_killed_in_its_tool_is_not_run_again_once_its_tool_is_ungated(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url, deployment(tmp_path, url, 1) as d:
        [bot] = d.bots
        trial = await open_trial(d, "in_tool", "pe1")
        d.hold(trial.cluster)
        await click(d, "U0BOB", trial)
        await d.wait("the tool to start", lambda: d.started(trial.cluster) == 1)
        await bot.kill()

        policy = tmp_path / "durable-policy.yml"
        policy.write_text(
            durable_tools.POLICY.replace(
                "scale_down: {approval: required}", "scale_down: {approval: never}"
            )
        )
        d.release(trial.cluster)
        await d.start()
        await d.wait("the outcome-unknown notice", lambda: said(d, trial, "outcome unknown"))
        await d.wait("the model's answer", lambda: said(d, trial, "Summary:"))
        assert d.started(trial.cluster) == 1, "the call ran again"
        assert ran_notices(d, trial) == 0
        assert not any("ran:" in t for t in d.ui.texts(CHANNEL, trial.thread))
