"""The chaos harness (bench/chaos.py): its short run passes, and its checks can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from bench.chaos import SHORT, turn_text
from bench.chaos_checks import Expected, verify
from conversation_client import Conversations
from demo.tables import ClaimNote, OutboxEmail
from interface import ConversationSettings, StartConversation
from support.ids import new_id
from support.paths import ROOT
from support.workers import WorkerFactory


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_short_chaos_run_has_no_duplicates_and_no_lost_turns(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "bench.chaos", "--short", "--out", str(out)]
    done = subprocess.run(
        [*command, "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert out.exists(), done.stderr[-3000:]
    report = json.loads(out.read_text())
    verdict, harness = report["verdict"], report["harness"]
    # on failure, tmp_path/work keeps the worker logs, workers.log and the histories
    assert done.returncode == 0, (verdict["problems"], str(tmp_path / "work"))
    assert verdict["passed"] and "PASSED" in done.stdout
    assert verdict["duplicates"] == 0 and verdict["lost_turns"] == 0
    turns = SHORT.conversations * SHORT.turns
    assert verdict["finished"] == verdict["conversations"] == SHORT.conversations
    assert verdict["turns_answered"] == verdict["turns_expected"] == turns
    assert verdict["notes"] == verdict["emails"] == turns
    assert verdict["runs_replayed"] > verdict["conversations"]  # continue-as-new happened
    # the chaos happened: random kills, worst-moment kills, duplicate sends
    assert harness["random_kills"] > 0 and sum(harness["worst_moment_kills"].values()) > 0
    assert harness["duplicate_sends"] > 0


async def test_checks_catch_duplicates_losses_and_claimed_rows(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
) -> None:
    """One clean conversation passes; then tampered rows fail each check they break."""
    cid = new_id("chaos")
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=1))
    expected = Expected(messages={cid: []}, markers={})
    async with run_worker(db):
        for k in (1, 2):
            message_id, marker = f"{cid}-m{k}", f"chaos {cid} turn {k}"
            expected.messages[cid].append(message_id)
            expected.markers[message_id] = marker
            await conversations.ask(cid, turn_text(marker), message_id, start)
        await conversations.end(cid)
        await conversations.handle(cid).result()

    clean = await verify(conversations.client, db, expected)
    assert clean.passed, clean.problems
    assert (clean.turns_answered, clean.notes, clean.emails) == (2, 2, 2)
    assert clean.runs_replayed >= 2  # a run per turn, and maybe one more for the end

    async with db.session() as session, session.begin():
        note = ClaimNote(
            claim_id=123, text=f"chaos {cid} turn 1", conversation_id=cid, ledger_key="x"
        )
        session.add(note)  # a second note for turn 1
        session.add(
            OutboxEmail(
                idempotency_key="another-key",
                claim_id=124,
                conversation_id=cid,
                to_address="alan@example.com",
                subject="not sent by any turn",
                body="-",
            )
        )
        await session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.tool == "create_claim_note")
            .values(status="claimed")
        )
        await session.execute(
            delete(TranscriptMessage).where(TranscriptMessage.message_id == f"{cid}-m2")
        )
    broken = await verify(conversations.client, db, expected)
    assert not broken.passed
    assert broken.duplicate_effects == 2  # the second note, the stray email
    assert broken.lost_turns == 1 and broken.claimed_left == 2
    assert broken.finished == 1 and broken.replay_failures == 0
