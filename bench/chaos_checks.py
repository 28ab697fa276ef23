"""The chaos run's verdict, read from the database and the workflow histories only.

- every conversation's workflow completed, with the right turn count in its result;
- each user message is a user turn of the transcript exactly once, and was answered (its
  tool results are not errors and an assistant reply follows);
- each tool call's side effect exists exactly once: a claim note per note text, an email
  in the provider's outbox per subject, and no ledger key behind two notes;
- no ledger row is left `claimed`;
- every run of every conversation's continue-as-new chain replays without error.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_workflows.conversation import AgentConversation
from sqlalchemy import select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from demo.tables import ClaimNote, OutboxEmail
from interface import ConversationSummary


@dataclass(frozen=True)
class Expected:
    """What the clients sent: per conversation, its message IDs in order, and per message
    the marker that its note's text and its email's subject carry."""

    messages: dict[str, list[str]]
    markers: dict[str, str]

    @property
    def turns(self) -> int:
        return sum(len(ids) for ids in self.messages.values())


@dataclass
class Verdict:
    conversations: int = 0
    finished: int = 0
    turns_expected: int = 0
    turns_in_transcript: int = 0
    turns_answered: int = 0
    duplicate_turns: int = 0
    lost_turns: int = 0
    unanswered_turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    notes: int = 0
    emails: int = 0
    duplicate_effects: int = 0
    lost_effects: int = 0
    ledger: dict[str, int] = field(default_factory=dict)
    claimed_left: int = 0
    runs_replayed: int = 0
    replay_failures: int = 0
    problems: list[str] = field(default_factory=list)
    suspects: list[str] = field(default_factory=list)
    """Conversations a problem was found in: the run writes their histories out."""

    @property
    def duplicates(self) -> int:
        return self.duplicate_turns + self.duplicate_effects

    @property
    def passed(self) -> bool:
        return (
            self.finished == self.conversations
            and self.duplicates == 0
            and self.lost_turns == 0
            and self.unanswered_turns == 0
            and self.lost_effects == 0
            and self.claimed_left == 0
            and self.replay_failures == 0
            and self.runs_replayed > 0
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"duplicates": self.duplicates, "passed": self.passed}

    def problem(self, text: str, conversation_id: str | None = None) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)
        if conversation_id and conversation_id not in self.suspects:
            self.suspects.append(conversation_id)


async def verify(client: Client, db: Database, expected: Expected) -> Verdict:
    verdict = Verdict(conversations=len(expected.messages), turns_expected=expected.turns)
    await _workflows(client, expected, verdict)
    await _transcript(db, expected, verdict)
    await _effects(db, expected, verdict)
    await _ledger(db, verdict)
    await _replay(client, expected, verdict)
    return verdict


async def _workflows(client: Client, expected: Expected, verdict: Verdict) -> None:
    for cid, ids in expected.messages.items():
        handle = client.get_workflow_handle_for(AgentConversation.run, cid)
        status = (await handle.describe()).status
        if status != WorkflowExecutionStatus.COMPLETED:
            verdict.problem(f"{cid}: workflow {status.name if status else 'UNKNOWN'}", cid)
            continue
        summary: ConversationSummary = await handle.result()
        if summary.turn_count != len(ids):
            verdict.problem(f"{cid}: result has {summary.turn_count} turns, not {len(ids)}", cid)
            continue
        verdict.finished += 1


async def _transcript(db: Database, expected: Expected, verdict: Verdict) -> None:
    query = select(
        TranscriptMessage.conversation_id,
        TranscriptMessage.chain_id,
        TranscriptMessage.seq,
        TranscriptMessage.message_id,
        TranscriptMessage.body,
    ).order_by(TranscriptMessage.conversation_id, TranscriptMessage.chain_id, TranscriptMessage.seq)
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    turns: Counter[tuple[str, str]] = Counter()
    answered: set[tuple[str, str]] = set()
    current: tuple[str, str] | None = None
    calls: list[dict[str, Any]] = []
    for cid, _chain, _seq, message_id, body in rows:
        message = json.loads(body)
        role = message["role"]
        if role == "user":
            current = (cid, str(message_id))
            turns[current] += 1
            calls = []
        elif role == "tool":
            verdict.tool_calls += 1
            verdict.tool_errors += bool(message.get("is_error"))
            calls.append(message)
        elif role == "assistant" and not message.get("tool_calls") and current is not None:
            if not any(c.get("is_error") for c in calls):
                answered.add(current)
    for cid, ids in expected.messages.items():
        for message_id in ids:
            seen = turns.pop((cid, message_id), 0)
            verdict.turns_in_transcript += seen
            if seen == 0:
                verdict.lost_turns += 1
                verdict.problem(f"{cid}: user turn {message_id} is not in the transcript", cid)
            elif seen > 1:
                verdict.duplicate_turns += seen - 1
                verdict.problem(
                    f"{cid}: user turn {message_id} is in the transcript {seen} times", cid
                )
            if seen and (cid, message_id) in answered:
                verdict.turns_answered += 1
            elif seen:
                verdict.unanswered_turns += 1
                verdict.problem(f"{cid}: user turn {message_id} has no clean answer", cid)
    for (cid, message_id), seen in turns.items():  # turns no client sent
        verdict.duplicate_turns += seen
        verdict.problem(f"{cid}: unexpected user turn {message_id}", cid)


async def _effects(db: Database, expected: Expected, verdict: Verdict) -> None:
    async with db.session() as session:
        notes = (await session.execute(select(ClaimNote.text, ClaimNote.ledger_key))).all()
        subjects = (await session.scalars(select(OutboxEmail.subject))).all()
    verdict.notes, verdict.emails = len(notes), len(subjects)
    note_keys = Counter(key for _, key in notes)
    for key, seen in note_keys.items():
        if seen > 1:
            verdict.duplicate_effects += seen - 1
            verdict.problem(f"ledger key {key} has {seen} claim notes", key.split("/")[0])
    for kind, found in (("note", Counter(t for t, _ in notes)), ("email", Counter(subjects))):
        for cid, ids in expected.messages.items():
            for message_id in ids:
                seen = found.pop(expected.markers[message_id], 0)
                if seen == 0:
                    verdict.lost_effects += 1
                    verdict.problem(f"{message_id}: no {kind}", cid)
                elif seen > 1:
                    verdict.duplicate_effects += seen - 1
                    verdict.problem(f"{message_id}: {seen} {kind}s", cid)
        for text, seen in found.items():
            verdict.duplicate_effects += seen
            verdict.problem(f"unexpected {kind}: {text!r}")


async def _ledger(db: Database, verdict: Verdict) -> None:
    query = select(LedgerEntry.status, LedgerEntry.conversation_id, LedgerEntry.key)
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    verdict.ledger = dict(Counter(status for status, _, _ in rows))
    for status, cid, key in rows:
        if status == "claimed":
            verdict.claimed_left += 1
            verdict.problem(f"ledger row {key} is still claimed", cid)


async def _replay(client: Client, expected: Expected, verdict: Verdict) -> None:
    replayer = Replayer(workflows=[AgentConversation], data_converter=pydantic_data_converter)
    histories = _chains(client, list(expected.messages))
    async with replayer.workflow_replay_iterator(histories) as results:
        async for result in results:
            verdict.runs_replayed += 1
            if result.replay_failure is not None:
                verdict.replay_failures += 1
                verdict.problem(
                    f"replay failed: {result.replay_failure}", result.history.workflow_id
                )


async def _chains(client: Client, conversation_ids: list[str]) -> AsyncIterator[WorkflowHistory]:
    """Every run of each conversation's continue-as-new chain, newest first."""
    for cid in conversation_ids:
        run_id: str | None = None
        while True:
            history = await client.get_workflow_handle(cid, run_id=run_id).fetch_history()
            yield history
            started = history.events[0].workflow_execution_started_event_attributes
            run_id = started.continued_execution_run_id or None
            if run_id is None:
                break
