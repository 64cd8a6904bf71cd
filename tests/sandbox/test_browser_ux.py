"""The first ten minutes on the sandbox page, in Chromium: the sample policy at work, labels
that say so, `/ask help`, and a mistyped command answered as Slack answers it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from bot.cli import SAMPLE_POLICY
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.sandbox.test_browser import (
    act_as,
    ask_and_open_thread,
    browser,
    open_page,
    pytestmark,
    say,
)

__all__ = ["browser", "pytestmark"]


async def test_sample_policy_labels_help_and_a_mistyped_command(
    harness: Harness, browser: Browser
) -> None:
    harness.slack.sandbox_info = {"model": "the offline rule-based model"}
    async with harness.bot(
        openai_api_key=None, approvals_tools=None, approvals_policy=str(SAMPLE_POLICY)
    ):
        page = await open_page(browser, harness.slack)
        acting = page.get_by_test_id("acting-as")
        await expect(acting.locator("option")).to_have_text(
            [
                "alice (asks; not on call)",
                "bob (on call: approves, @sreoncall)",
                "carol (not on call: refused)",
                "dave (on call: approves, @sreoncall)",
            ]
        )
        await act_as(page, "U0ALICE")
        messages = page.get_by_test_id("messages")

        await say(page, "/aks list clusters")
        mistyped = messages.get_by_test_id("ephemeral").filter(has_text="/aks")
        await expect(mistyped).to_contain_text("/aks is not a valid command.")
        await expect(page.locator(".toast")).to_have_count(0)

        await say(page, "/ask help")
        helped = messages.get_by_test_id("ephemeral").filter(has_text="Needs approval")
        await expect(helped).to_contain_text("drop_table: 2 approvals from @sreoncall")

        card = await ask_and_open_thread(page, "delete cluster cl-003")
        await act_as(page, "U0CAROL")
        await card.get_by_role("button", name="Approve").click()
        await page.get_by_role("alertdialog").get_by_role("button", name="Approve").click()
        thread = page.get_by_test_id("thread")
        await expect(thread.get_by_test_id("ephemeral")).to_contain_text("You can't approve this")
        await act_as(page, "U0ALICE")
        await card.get_by_role("button", name="Approve").click()
        await page.get_by_role("alertdialog").get_by_role("button", name="Approve").click()
        await expect(thread.get_by_test_id("ephemeral")).to_contain_text("You asked for this call")
        await act_as(page, "U0DAVE")
        await card.get_by_role("button", name="Approve").click()
        await page.get_by_role("alertdialog").get_by_role("button", name="Approve").click()
        await expect(card).to_contain_text("Approved by @dave")


async def test_show_all_arguments_and_local_times_on_the_page(
    harness: Harness, browser: Browser
) -> None:
    sql = "SELECT * FROM orders WHERE note = '" + "x" * 1973 + "'; DROP TABLE customers"
    harness.policy_file.write_text("tools:\n  run_sql: {approval: required}\n")
    harness.model.script(
        reply_tool_calls(("run_sql", {"statement": sql, "database": "prod"})),
        reply_text("done"),
    )
    async with harness.bot():
        page = await browser.new_page(timezone_id="Asia/Tokyo")
        page.set_default_timeout(8000)
        await page.goto(harness.slack.base_url)
        await act_as(page, "U0ALICE")
        card = await ask_and_open_thread(page, "run_sql cleanup")
        await expect(card).to_contain_text("DROP TABLE customers")
        await card.get_by_role("button", name="Show all arguments").click()
        modal = page.get_by_test_id("modal")
        await expect(modal).to_contain_text(sql)
        await modal.get_by_role("button", name="Close", exact=True).last.click()
        await expect(modal).to_have_count(0)

        await act_as(page, "U0BOB")
        await card.get_by_role("button", name="Approve").click()
        await expect(card).to_contain_text("Approved by @bob at ")
        decided = await card.inner_text()
        assert "UTC" not in decided
        # The reader's zone, not UTC (the hour read just after the decision, or a minute before).
        now = datetime.now(ZoneInfo("Asia/Tokyo"))
        hours = "|".join({(now - timedelta(minutes=m)).strftime("%I").lstrip("0") for m in (0, 1)})
        assert re.search(rf"Approved by @bob at (today|yesterday) at ({hours}):", decided)
