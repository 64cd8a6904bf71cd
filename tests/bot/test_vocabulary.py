"""One vocabulary for people: Deny/Denied on the card, in notices and in the audit trail (old
"rejected" rows read the same), counts that agree, and times each reader sees in their zone."""

from __future__ import annotations

import json
import re

from bot import audit
from bot.audit_trail import read_audit
from bot.db import Database
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls


async def test_a_denial_is_denied_everywhere(harness: Harness) -> None:
    # The policy may say "deny", the button's word, as well as LangChain's "reject".
    harness.policy_file.write_text(
        "tools:\n  list_clusters: {approval: never}\n"
        "  delete_cluster: {approval: required, decisions: [approve, deny]}\n"
    )
    async with harness.bot() as bot:
        thread, card = await harness.ask_call(
            "delete cluster cl-003", "delete_cluster", {"cluster_id": "cl-003"}, "Left alone."
        )
        shown = json.dumps(card.blocks)
        assert re.search(r"expires <!date\^\d+\^\{date_short_pretty\} at \{time\}\|", shown)
        await harness.deny("U0BOB", "C0OPS", card.ts, "freeze")
        await harness.wait_text("C0OPS", thread, "Left alone.")
        await harness.idle()
        decided = json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        assert "Denied: delete_cluster" in decided and "Denied by <@U0BOB> at <!date^" in decided
        assert "eject" not in decided
        assert "eject" not in " ".join(harness.texts("C0OPS", thread))
        db: Database = bot.store.db
        # A row written before the vocabulary was one still reads as a denial.
        await db.execute("INSERT INTO audit (at, event, tool) VALUES (1, 'rejected', 'old_tool')")
        events = [(r.event, r.tool) for r in audit.under_current_names(await read_audit(db))]
    assert ("denied", "delete_cluster") in events and ("denied", "old_tool") in events
    assert not any(event == "rejected" for event, _ in events)


async def test_counts_agree(harness: Harness) -> None:
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("unused"),
    )
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 2")
        await harness.wait_cards("C0OPS", thread)
        await harness.slack.post_user_message(
            "U0ALICE", "C0OPS", "<@U0BOT> and more?", thread_ts=thread
        )
        await harness.wait_text("C0OPS", thread, "waiting on 1 approval ")
        await harness.slack.post_user_message(
            "U0ALICE", "C0OPS", "<@U0BOT> cancel", thread_ts=thread
        )
        await harness.wait_text("C0OPS", thread, "Withdrew 1 pending call.")
        await harness.idle()
