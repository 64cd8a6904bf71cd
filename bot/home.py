"""The app's Home tab: what waits on the viewer, and the viewer's own requests.

Published with `views.publish` when someone opens the tab (`app_home_opened`) and, for the
people concerned, when a request is made or decided. Its Approve and Deny buttons carry the
approval id only: a click goes through the same decision path and checks as a card's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.home_viewers import HomeViewers
from bot.route_store import Route
from bot.routing import Routing
from bot.store import Approval, Store

log = logging.getLogger(__name__)

HOME_APPROVE_ACTION = "home_approve"
HOME_DENY_ACTION = "home_deny"

# A Home tab holds at most 100 blocks: 2 per waiting request, 1 per own request, 5 others.
WAITING_SHOWN = 30
MINE_SHOWN = 30
# Pending requests read to find those the viewer may decide, newest first.
PENDING_READ = 200
SUMMARY_LIMIT = 300


class Home:
    def __init__(self, store: Store, client: AsyncWebClient, routing: Routing) -> None:
        self.store = store
        self.client = client
        self.routing = routing
        self.viewers = HomeViewers(store.db)

    @staticmethod
    def refusal(approval: Approval) -> str | None:
        """Why a Home tab click cannot decide this request, whoever clicks: one anyone may
        decide is never listed there (see Routing.may_decide), so a click on it did not come
        from a Home tab the bot published."""
        if approval.policy.approvers:
            return None
        return "This request is decided on its card in the conversation, not on the Home tab."

    async def affected(self, approval: Approval) -> list[str]:
        """Whose Home tab shows this request: the requester's and its deciders'."""
        return list(dict.fromkeys([approval.requester, *await self.routing.deciders(approval)]))

    async def opened(self, user: str) -> None:
        """`user` opened the Home tab: publish it, and keep it current from now on."""
        await self.viewers.opened(user)
        await self.publish(user)

    async def refresh(self, users: Iterable[str]) -> None:
        """Republish the Home tab of those of `users` who ever opened it."""
        wanted = list(dict.fromkeys(users))
        if not wanted:
            return
        viewers = await self.viewers.among(wanted)
        for user in wanted:
            if user in viewers:
                await self.publish(user)

    async def refresh_for(self, approval: Approval) -> None:
        # Who is affected takes group lookups: not worth them while nobody uses the tab.
        if await self.viewers.anyone():
            await self.refresh(await self.affected(approval))

    async def publish(self, user: str) -> None:
        try:
            await self.client.views_publish(user_id=user, view=await self.view(user))
        except SlackApiError as exc:
            log.warning("could not publish the Home tab of %s: %s", user, exc.response["error"])

    async def view(self, user: str) -> dict[str, Any]:
        now = time.time()
        pending = await self.store.pending_newest(PENDING_READ)
        routes = await self.routing.routes([a.id for a in pending])
        waiting = [a for a in pending if await self.routing.may_decide(a, user, routes.get(a.id))][
            :WAITING_SHOWN
        ]
        mine = await self.store.requested_by(user, MINE_SHOWN)
        body: list[blocks.Block] = [_header("Waiting on you")]
        if not waiting:
            body.append(_context("Nothing waits on you."))
        routes.update(await self.routing.routes([a.id for a in mine if a.id not in routes]))
        for approval in waiting:
            link = _link(routes.get(approval.id))
            body.append(
                _section(
                    f"*`{blocks.escape(approval.tool)}`* {_summary(approval)}\n"
                    f"Requested by {blocks.mention(approval.requester)} · "
                    f"{ago(now - approval.created_at)} ago{link}"
                )
            )
            body.append(
                {
                    "type": "actions",
                    "block_id": f"home:{approval.id}",
                    "elements": [
                        _button(HOME_APPROVE_ACTION, "Approve", approval.id, "primary"),
                        _button(HOME_DENY_ACTION, "Deny", approval.id, "danger"),
                    ],
                }
            )
        body += [{"type": "divider"}, _header("Your requests")]
        if not mine:
            body.append(_context("You have not asked for anything that needs approval."))
        for approval in mine:
            body.append(
                _section(
                    f"*`{blocks.escape(approval.tool)}`* {_summary(approval)}\n"
                    f"{blocks.outcome_line(approval)} · asked {ago(now - approval.created_at)} "
                    f"ago{_link(routes.get(approval.id))}"
                )
            )
        return {"type": "home", "callback_id": "approvals_home", "blocks": body}


def _link(route: Route | None) -> str:
    return f" · <{route.permalink}|thread>" if route and route.permalink else ""


def _summary(approval: Approval) -> str:
    args = ", ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in approval.args.items()
    )
    return f"`{blocks.escape(blocks.cut(args, SUMMARY_LIMIT))}`" if args else "_no arguments_"


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


def _header(text: str) -> blocks.Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _section(text: str) -> blocks.Block:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": blocks.cut(text, blocks.SECTION_TEXT_LIMIT)},
    }


def _context(text: str) -> blocks.Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(action_id: str, text: str, value: str, style: str) -> blocks.Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
        "style": style,
    }
