"""The first ten minutes on the sandbox page, in Chromium: the sample policy at work, labels
that say so, `/ask help`, and a mistyped command answered as Slack answers it."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from bot.cli import SAMPLE_POLICY
from tests.conftest import Harness
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
