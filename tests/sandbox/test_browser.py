"""The sandbox page in a real browser: Debian's Chromium driven by Playwright, against the
emulator with the real bot (offline model, demo infrastructure, default policy) behind it."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli import SAMPLE_POLICY
from bot.sandbox.emulator import SlackEmulator
from tests.conftest import Harness
from tests.sandbox.test_web import FORM_MESSAGE, form_app, option, socket_mode

try:
    from playwright.async_api import Browser, Locator, Page, async_playwright, expect
except ImportError:
    pytest.skip(
        "the playwright package is not installed: pip install -e '.[test]'",
        allow_module_level=True,
    )

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
# The README's screenshot is rewritten only on request, so a test run leaves the tree clean.
UPDATE_DOCS = os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)",
    ),
    pytest.mark.timeout(60),
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def open_page(browser: Browser, slack: SlackEmulator) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 760})
    page.set_default_timeout(8000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(slack.base_url)
    await expect(page.locator("#live")).to_have_text("live")
    assert not errors, errors
    return page


async def act_as(page: Page, user: str) -> None:
    await page.get_by_test_id("acting-as").select_option(user)
    await expect(page.locator("#you")).to_contain_text(f"@{user.removeprefix('U0').lower()}")


async def say(page: Page, text: str, where: str = "composer") -> None:
    box = page.get_by_test_id(where)
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


async def ask_and_open_thread(page: Page, request: str) -> Locator:
    """`/ask` in the open channel, open the thread the bot starts, and return its card."""
    await say(page, f"/ask {request}")
    root = page.get_by_test_id("messages").get_by_test_id("message").filter(has_text=request)
    thread = page.get_by_test_id("thread")
    for _ in range(3):
        await root.get_by_role("button", name=re.compile(r"\d+ repl")).click()
        # A reply arriving mid-click redraws the list between mousedown and mouseup, and the
        # browser then fires no click at all (as it would for a person): click again.
        with contextlib.suppress(AssertionError):
            await expect(thread).to_be_visible(timeout=2000)
            break
    card = thread.get_by_test_id("message").filter(has=page.get_by_role("button", name="Approve"))
    await expect(card).to_contain_text(f"Approval needed: {request.split()[0]}")
    # Pin the card by its ts: once decided it has no buttons left to find it by.
    return thread.locator(f'[data-ts="{await card.get_attribute("data-ts")}"]')


def demo_bot(harness: Harness) -> Any:
    harness.slack.sandbox_info = {"model": "the offline rule-based model"}
    # As `slack-approvals run` starts the sandbox: the demo tools under the sample policy.
    return harness.bot(
        openai_api_key=None, approvals_tools=None, approvals_policy=str(SAMPLE_POLICY)
    )


async def test_ask_and_approve_in_the_browser(harness: Harness, browser: Browser) -> None:
    async with demo_bot(harness):
        page = await open_page(browser, harness.slack)
        await expect(page.get_by_test_id("model")).to_have_text(
            "Answering: the offline rule-based model"
        )
        await act_as(page, "U0ALICE")
        card = await ask_and_open_thread(page, "scale down cl-001 to 2")
        await expect(card).to_contain_text("cluster_id")
        await expect(card).to_contain_text("Requested by @alice")

        OUTPUT.mkdir(exist_ok=True)
        await page.mouse.move(0, 0)  # no hover toolbar in the pictures
        await card.screenshot(path=OUTPUT / "sandbox-approval.png")
        await page.screenshot(path=OUTPUT / "sandbox-page.png")
        if UPDATE_DOCS:
            await page.screenshot(path=ROOT / "docs" / "sandbox.png")

        await act_as(page, "U0BOB")
        await card.get_by_role("button", name="Approve").click()
        await expect(card).to_contain_text("Approved by @bob")
        await expect(card.locator(".b-button")).to_have_count(0)
        await expect(card).to_contain_text("(edited)")
        thread = page.get_by_test_id("thread")
        await expect(thread).to_contain_text("Scaled cl-001 down")
        await page.screenshot(path=OUTPUT / "sandbox-approved.png")

    clicks = [
        d.payload for d in harness.slack.deliveries if d.payload.get("type") == "block_actions"
    ]
    assert [(c["user"]["id"], c["actions"][0]["action_id"]) for c in clicks] == [
        ("U0BOB", "approval_approve")
    ]


async def test_deny_with_a_reason_in_the_modal(harness: Harness, browser: Browser) -> None:
    async with demo_bot(harness):
        page = await open_page(browser, harness.slack)
        await act_as(page, "U0ALICE")
        card = await ask_and_open_thread(page, "scale down cl-002 to 1")

        await act_as(page, "U0DAVE")
        await card.get_by_role("button", name="Deny").click()
        modal = page.get_by_test_id("modal")
        await expect(modal).to_be_visible()
        await modal.get_by_label("Reason").fill("not during the freeze")
        await page.screenshot(path=OUTPUT / "sandbox-deny-modal.png")
        await modal.get_by_role("button", name="Deny").click()
        await expect(modal).to_have_count(0)
        await expect(card).to_contain_text("Denied by @dave")
        await expect(card).to_contain_text("not during the freeze")
        await expect(card.locator(".b-button")).to_have_count(0)
        await expect(page.get_by_test_id("thread")).to_contain_text("was not run")

    submissions = [
        d.payload["view"]
        for d in harness.slack.deliveries
        if d.payload.get("type") == "view_submission"
    ]
    assert [(v["callback_id"], v["state"]["values"]) for v in submissions] == [
        (
            "deny_reason",
            {"reason": {"reason": {"type": "plain_text_input", "value": "not during the freeze"}}},
        )
    ]


async def test_block_kit_confirm_reactions_and_forms(
    slack: SlackEmulator, browser: Browser
) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    seen: list[dict[str, Any]] = []
    text = (
        "*bold* _italic_ ~gone~ `code` <https://example.com/?a=1&amp;b=2|a link> "
        "<@U0ALICE> <#C0GENERAL> <!subteam^S0SREONCALL> :white_check_mark: :no_such_emoji: "
        "&lt;b&gt;not bold&lt;/b&gt;\n```x < y```"
    )
    await client.chat_postMessage(channel="C0OPS", text=text)
    await client.chat_postMessage(channel="C0OPS", text="form", blocks=FORM_MESSAGE)
    await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="just for alice")
    await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="just for bob")

    async with socket_mode(slack, form_app(client, seen)):
        page = await open_page(browser, slack)
        await act_as(page, "U0ALICE")
        messages = page.get_by_test_id("messages")
        rich = messages.get_by_test_id("message").filter(has_text="italic")
        await expect(rich.locator("b")).to_have_text("bold")
        await expect(rich.locator("i")).to_have_text("italic")
        await expect(rich.locator("s")).to_have_text("gone")
        await expect(rich.locator("code")).to_have_text("code")
        await expect(rich.locator("pre")).to_have_text("x < y")
        link = rich.get_by_role("link", name="a link")
        await expect(link).to_have_attribute("href", "https://example.com/?a=1&b=2")
        await expect(rich.locator(".mention.me")).to_have_text("@alice")
        await expect(rich.locator(".channel-link")).to_have_text("#general")
        await expect(rich.locator(".mention.group")).to_have_text("@sreoncall")
        await expect(rich).to_contain_text("✅")
        await expect(rich).to_contain_text(":no_such_emoji: <b>not bold</b>")
        await expect(messages.get_by_test_id("ephemeral")).to_have_count(1)
        await expect(messages.get_by_test_id("ephemeral")).to_contain_text("Only visible to you")
        await expect(messages.get_by_test_id("ephemeral")).to_contain_text("just for alice")

        await rich.hover()
        await rich.get_by_role("button", name="Add reaction").click()
        await rich.get_by_role("button", name="✅").click()
        await expect(rich.locator(".reaction.mine")).to_contain_text("1")

        # A confirm dialog comes first; "Keep it" sends nothing.
        form = messages.get_by_test_id("message").filter(has_text="Need access?")
        await form.get_by_role("button", name="Drop it").click()
        dialog = page.get_by_role("alertdialog")
        await expect(dialog).to_contain_text("This drops audit_2019 for good.")
        await dialog.get_by_role("button", name="Keep it").click()
        await form.get_by_role("button", name="Drop it").click()
        await dialog.get_by_role("button", name="Drop").click()
        risky = await slack.wait_for(lambda: seen and seen[-1].get("type") == "block_actions")
        assert risky and seen[-1]["actions"][0]["action_id"] == "risky" and len(seen) == 1

        await form.get_by_role("button", name="Open the form").click()
        modal = page.get_by_test_id("modal")
        await expect(modal).to_contain_text("Request access")
        await modal.get_by_role("button", name="Send").click()
        await expect(modal.locator(".field-error:visible")).to_have_count(2)  # checked locally
        await modal.get_by_label("Title").fill("x")
        await modal.get_by_label("Size").select_option("large")
        await modal.get_by_role("button", name="Send").click()
        await expect(modal.locator(".field-error:visible")).to_have_text(["Too short"])
        await modal.get_by_label("Title").fill("Read access")
        await modal.get_by_label("Notes").fill("for the\naudit")
        await modal.get_by_role("button", name="Send").click()
        await expect(modal).to_have_count(0)
        assert seen[-1]["view"]["state"]["values"] == {
            "title": {"title_input": {"type": "plain_text_input", "value": "Read access"}},
            "notes": {"notes_input": {"type": "plain_text_input", "value": "for the\naudit"}},
            "size": {"size_select": {"type": "static_select", "selected_option": option("large")}},
        }

        await form.get_by_role("button", name="Open the form").click()
        await modal.get_by_role("button", name="Cancel").click()
        await expect(modal).to_have_count(0)
        closed = await slack.wait_for(lambda: seen[-1]["type"] == "view_closed" and seen[-1])
        assert closed["view"]["callback_id"] == "form"


async def test_alice_asks_in_a_dm_and_bob_approves_on_his_home_tab(
    harness: Harness, browser: Browser
) -> None:
    async with demo_bot(harness):
        page = await open_page(browser, harness.slack)
        await act_as(page, "U0ALICE")
        await page.locator('[data-channel="D0ALICE"]').click()
        await say(page, "scale down cl-001 to 2")
        messages = page.get_by_test_id("messages")
        # Nobody who may approve can see alice's DM: the request goes to them.
        await expect(messages).to_contain_text("Asked @sreoncall by DM and in #approvals")
        needed = messages.get_by_test_id("message").filter(has_text="Approval needed: scale_down")
        mine = messages.locator(f'[data-ts="{await needed.get_attribute("data-ts")}"]')

        # Bob has it in his DM with the app, with a link back to alice's conversation...
        await act_as(page, "U0BOB")
        await page.locator('[data-channel="D0BOB"]').click()
        await expect(needed).to_contain_text("Open the conversation")
        copy = messages.locator(f'[data-ts="{await needed.get_attribute("data-ts")}"]')
        await expect(copy.get_by_role("button", name="Approve")).to_be_visible()
        # ...and on his Home tab, where he approves.
        await page.locator('[data-channel="home"]').click()
        home = page.get_by_test_id("home")
        await expect(home).to_contain_text("Waiting on you")
        await expect(home).to_contain_text("cluster_id=cl-001, replicas=2")
        await page.screenshot(path=OUTPUT / "sandbox-home.png")
        await home.get_by_role("button", name="Approve").click()
        await expect(home).to_contain_text("Nothing waits on you")
        await expect(home).to_contain_text("Your requests")

        await page.locator('[data-channel="D0BOB"]').click()
        await expect(copy).to_contain_text("Approved by @bob")
        await expect(copy.locator(".b-button")).to_have_count(0)
        await act_as(page, "U0ALICE")
        await page.locator('[data-channel="D0ALICE"]').click()
        await expect(mine).to_contain_text("Approved by @bob")
        await expect(messages).to_contain_text("Scaled cl-001 down")
