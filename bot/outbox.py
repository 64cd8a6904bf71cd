"""Thread messages: every notice and answer goes through the outbox table, so none is lost.

A message is stored before it is posted and deleted once Slack has it. A post that fails
past slack-sdk's own retries (an outage, a 5xx, a refused connection) stays in the outbox and
is tried again with backoff while the bot runs, and at the next start; messages of one
conversation are posted in order, a later one never overtaking one that waits. Posting a
conversation's messages happens under that conversation's lock (the runner's), so two
replicas never post the same row.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.conversation import Conversation
from bot.outbox_queue import OutboxMessage
from bot.store import AuditEntry, Store

log = logging.getLogger(__name__)

RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
# Errors that posting again would only repeat: the message can never be posted.
NEVER_POSTABLE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "msg_too_long",
        "invalid_blocks",
        "no_text",
        "thread_not_found",
        "restricted_action",
    }
)
# What a post to an unreachable or failing Slack raises once slack-sdk's retries are spent.
UNREACHABLE = (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def retry_delay(attempts: int) -> float:
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** max(0, attempts - 1))


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, SlackApiError) and exc.response.get("error") in NEVER_POSTABLE


class ThreadMessages:
    def __init__(self, store: Store, client: AsyncWebClient) -> None:
        self.store = store
        self.client = client

    async def say(self, conv: Conversation, text: str, audit: AuditEntry | None = None) -> None:
        """Post in the thread, through the outbox (call under the conversation's lock): a
        stop or an outage before Slack confirms the post leaves it to be posted later. With
        `audit`, the audit record of what the message reports is kept with it."""
        await self._post(conv, await self.store.outbox_put(conv.key, text, audit))

    async def flush(self, conv: Conversation, *, due_only: bool = False) -> bool:
        """Post this conversation's waiting messages in order, stopping at the first that
        Slack will not take yet; True when none is left waiting."""
        return await self._post(conv, await self.store.outbox_left(conv.key), due_only=due_only)

    async def _post(
        self, conv: Conversation, waiting: list[OutboxMessage], *, due_only: bool = False
    ) -> bool:
        for message in waiting:
            if due_only and message.next_at is not None and message.next_at > time.time():
                return False
            try:
                await self.client.chat_postMessage(
                    channel=conv.channel,
                    thread_ts=conv.reply_thread_ts,
                    text=blocks.cut(message.text, 3000),
                    blocks=blocks.notice(message.text),
                )
            except UNREACHABLE as exc:
                if is_permanent(exc):
                    log.error("dropping a message Slack will never take in %s: %s", conv.key, exc)
                    await self.store.outbox_done(message.seq)
                    continue
                attempts = message.attempts + 1
                delay = retry_delay(attempts)
                log.warning(
                    "could not post in %s (attempt %d, next in %.0f s): %s",
                    conv.key,
                    attempts,
                    delay,
                    exc,
                )
                await self.store.outbox_later(message.seq, attempts, time.time() + delay)
                return False
            await self.store.outbox_done(message.seq)
        return True
