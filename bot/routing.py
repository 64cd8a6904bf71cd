"""Where an approval request goes besides its thread, and the copies of its card there.

The policy's `notify` names the places (`approvers`: a DM to each approver; `C…`: an
approvals channel). A request nobody in its conversation may decide (a DM, or a channel no
approver is in) goes to the approvers whatever `notify` says. Every copy carries the same
buttons as the thread's card, and a click on any of them takes the same path and claim
(bot/decisions.py); every copy is redrawn with the thread's card.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.policy import APPROVERS
from bot import blocks
from bot.conversation import Conversation
from bot.directory import Directory
from bot.route_store import Copy, Route, RouteStore
from bot.store import Approval, Store

log = logging.getLogger(__name__)

# chat.update errors that mean a copy will never be updated again.
COPY_GONE = frozenset(
    {"message_not_found", "channel_not_found", "cant_update_message", "is_archived"}
)


def who(principals: Iterable[str]) -> str:
    """Approvers as Slack shows them: groups by handle, people by name."""
    return ", ".join(
        f"<!subteam^{p}>" if p.startswith("S") else blocks.mention(p) for p in principals
    )


class Routing:
    def __init__(self, store: Store, client: AsyncWebClient, directory: Directory) -> None:
        self.store = store
        self.records = RouteStore(store.db)
        self.client = client
        self.directory = directory

    # who may decide ----------------------------------------------------------------------

    async def approvers_of(self, approval: Approval, route: Route | None = None) -> list[str]:
        """The approvers a request was made with, widened by its escalation if it had one
        (`route`, when the caller has read it already). An empty list means anyone, and
        escalation never narrows that."""
        base = list(approval.policy.approvers)
        if not base:
            return base
        route = route or await self.route(approval.id)
        extra = [p for p in route.escalated_to if p not in base] if route else []
        return [*base, *extra]

    async def people(self, principals: Iterable[str]) -> list[str]:
        """User ids behind a list of users and user groups, in order, once each."""
        found: dict[str, None] = {}
        for principal in principals:
            if principal.startswith("S"):
                try:
                    members = await self.directory.group_members(principal)
                except SlackApiError as exc:
                    log.warning("cannot list group %s: %s", principal, exc.response.get("error"))
                    continue
                found.update(dict.fromkeys(sorted(members)))
            else:
                found[principal] = None
        return list(found)

    async def may_decide(self, approval: Approval, user: str, route: Route | None) -> bool:
        """What the Home tab lists; a click still goes through the decision path's checks.
        A request anyone may decide is not listed: "anyone" means anyone who can see its
        card, and the Home tab would show it to people outside its conversation."""
        if not approval.policy.approvers:
            return False
        if not approval.policy.allow_self_approval and user == approval.requester:
            return False
        try:
            return await self.directory.is_allowed(
                user, await self.approvers_of(approval, route), fresh=False
            )
        except SlackApiError:
            return False

    async def deciders(self, approval: Approval) -> list[str]:
        """The people a request is for (none listed when anyone may decide)."""
        people = await self.people(await self.approvers_of(approval))
        if not approval.policy.allow_self_approval:
            people = [p for p in people if p != approval.requester]
        return people

    # records -----------------------------------------------------------------------------

    async def route(self, approval_id: str) -> Route | None:
        return await self.records.route(approval_id)

    async def routes(self, approval_ids: list[str]) -> dict[str, Route]:
        return await self.records.routes(approval_ids)

    async def copies(self, approval_id: str) -> list[Copy]:
        return await self.records.copies(approval_id)

    async def with_copies(self, approval_id: str) -> tuple[Route | None, list[Copy]]:
        return await self.records.with_copies(approval_id)

    async def belongs(self, approval: Approval, channel: str, message_ts: str | None) -> bool:
        """Is this message the request's card, in its thread or any recorded copy? A button
        value pasted into another message must not decide anything."""
        if approval.channel == channel and message_ts in (None, approval.message_ts):
            return True
        if message_ts is None:
            return False
        return await self.records.is_copy(approval.id, channel, message_ts)

    # routing a new request ---------------------------------------------------------------

    async def send(self, conv: Conversation, approval: Approval) -> str | None:
        """Take a just-posted request where its approvers are; returns the thread notice
        saying where it went (or why it can reach nobody), if any. Done once per request:
        the route row is claimed first, so a repeated call posts nothing twice."""
        assert approval.message_ts is not None
        rules = approval.policy
        remind_s, escalate_s = rules.remind_after_s, rules.escalate_after_s
        permalink = await self._permalink(approval.channel, approval.message_ts)
        claimed = await self.records.open_route(
            approval.id,
            permalink,
            approval.created_at + remind_s if remind_s else None,
            approval.created_at + escalate_s if escalate_s else None,
        )
        if not claimed:
            return None
        approvers = list(rules.approvers)
        if not approvers:
            return None  # anyone may decide: whoever reads the thread
        # People named directly settle most questions without looking groups up.
        direct = [
            p
            for p in approvers
            if not p.startswith("S") and (rules.allow_self_approval or p != approval.requester)
        ]
        if not direct and not await self.deciders(approval):
            return (
                f":warning: Nobody can approve this request: {who(approvers)} has no one "
                "who may decide it. Nothing will happen until the policy's approvers are "
                f"fixed; the request {_expiry(approval)}."
            )
        notify = list(rules.notify)
        why = ""
        if APPROVERS not in notify and not await self._anyone_here(conv.channel, approval, direct):
            notify.append(APPROVERS)
            why = " (nobody here may approve it)"
        places: list[str] = []
        if APPROVERS in notify:
            people = await self.deciders(approval)
            sent = await self.send_to_people(approval, people, permalink)
            if sent:
                places.append("by DM")
        for channel in notify:
            if channel == APPROVERS or channel == conv.channel:
                continue
            if await self._post_copy(approval, channel, "channel", permalink):
                places.append(f"in <#{channel}>")
            else:
                places.append(f"(not in <#{channel}>: invite me there)")
        if not places:
            return None
        return f":incoming_envelope: Asked {who(approvers)} {' and '.join(places)}{why}."

    async def send_to_people(
        self, approval: Approval, people: list[str], permalink: str | None
    ) -> list[str]:
        """A copy in each person's DM with the bot (but not where the request already is);
        returns who got one."""
        sent = []
        have = {c.channel for c in await self.copies(approval.id)}
        for person in people:
            try:
                opened = await self.client.conversations_open(users=person)
            except SlackApiError as exc:
                log.warning("cannot open a DM with %s: %s", person, exc.response.get("error"))
                continue
            dm = str(opened["channel"]["id"])
            if dm == approval.channel or dm in have:
                continue
            if await self._post_copy(approval, dm, "dm", permalink):
                sent.append(person)
        return sent

    async def _post_copy(
        self, approval: Approval, channel: str, kind: str, permalink: str | None
    ) -> bool:
        route = await self.route(approval.id)
        card = self.card(approval, blocks.approval_card(approval), route)
        try:
            response = await self.client.chat_postMessage(
                channel=channel,
                text=blocks.card_text(approval),
                blocks=blocks.with_link(card, permalink),
            )
        except SlackApiError as exc:
            log.warning(
                "cannot post a copy of %s in %s: %s", approval.id, channel, exc.response["error"]
            )
            return False
        await self.records.add_copy(
            approval.id, Copy(str(response["channel"]), str(response["ts"]), kind)
        )
        return True

    async def _permalink(self, channel: str, message_ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=message_ts)
        except SlackApiError as exc:
            log.warning("no permalink for %s in %s: %s", message_ts, channel, exc.response["error"])
            return None
        return str(response["permalink"])

    async def _anyone_here(self, channel: str, approval: Approval, direct: list[str]) -> bool:
        """Is anyone who may decide in the conversation? A DM (or a conversation whose
        members cannot be listed) counts as no: the request then goes to them directly."""
        if channel.startswith("D"):
            return False
        members: set[str] = set()
        try:
            async for page in await self.client.conversations_members(channel=channel, limit=200):
                members.update(page.get("members") or ())
        except SlackApiError as exc:
            log.warning("cannot list the members of %s: %s", channel, exc.response.get("error"))
            return False
        if members.intersection(direct):
            return True
        return bool(members.intersection(await self.deciders(approval)))

    # drawing -----------------------------------------------------------------------------

    def card(
        self, approval: Approval, card: list[blocks.Block], route: Route | None
    ) -> list[blocks.Block]:
        """The card as drawn, plus where the request was escalated, if it was (`route`: the
        request's route, read by the caller, None if it has none)."""
        if route is None or not route.escalated_to:
            return card
        at = f" at {blocks.clock(route.escalated_at)}" if route.escalated_at else ""
        return blocks.before_buttons(
            card, f":arrow_double_up: Escalated to {who(route.escalated_to)}{at}"
        )

    async def redraw_copies(
        self, approval: Approval, card: list[blocks.Block], route: Route | None, copies: list[Copy]
    ) -> bool:
        """Draw every copy as the thread's card is drawn (`route` and `copies`: as read by
        `with_copies`); False if one could not be drawn yet (the caller's catch-up then
        tries again)."""
        if not copies:
            return True
        drawn = blocks.with_link(card, route.permalink if route else None)
        ok = True
        for copy in copies:
            try:
                await update_card(self.client, copy.channel, copy.message_ts, approval, drawn)
            except SlackApiError as exc:
                error = exc.response.get("error")
                where = (approval.id, copy.channel)
                if error in COPY_GONE:
                    log.warning("the copy of %s in %s is gone (%s)", *where, error)
                else:
                    log.warning("could not update the copy of %s in %s (%s)", *where, error)
                    ok = False
        return ok


async def update_card(
    client: AsyncWebClient, channel: str, ts: str, approval: Approval, card: list[blocks.Block]
) -> None:
    """Redraw a posted card (the thread's or a copy) as `card`."""
    await client.chat_update(channel=channel, ts=ts, text=blocks.card_text(approval), blocks=card)


def _expiry(approval: Approval) -> str:
    if approval.expires_at is None:
        return "never expires, so withdraw it (say `cancel`)"
    return f"expires at {blocks.clock(approval.expires_at)}"
