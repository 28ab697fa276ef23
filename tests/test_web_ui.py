"""The Temporal Web UI shows what a person looks for in a conversation, checked in a real
browser: headless Chromium (Debian's `chromium` package, installed here if missing) driven by
Playwright, against a dev server of this module's own with its UI on.

Screenshots go to test-output/web-ui/.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.db import Database
from agent_conversations import has_search_attributes
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.run import TURNS
from demo.scripted_model import ScriptedChatCompletionClient
from devserver import ROOT, start_dev_server
from interface import StartConversation, ToolDecision
from support.chromium import chromium_or_skip, headless, new_page
from support.ids import new_id
from support.temporal_cli import temporal
from support.visibility import WAITING, listed
from worker import build_worker

pytestmark = [
    pytest.mark.e2e,  # a browser against the Web UI
    pytest.mark.timeout(900),  # a first run may install Chromium
]

OUTPUT = ROOT / "test-output" / "web-ui"
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)  # waits for the UI, never sleeps; generous for CI


@pytest.fixture(scope="module")
def chromium() -> Path:
    return chromium_or_skip("the Web UI test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def ui_server() -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A dev server with its Web UI on (the session's server runs without one)."""
    ui_port = _free_port()
    environment = await start_dev_server(ui=True, ui_port=ui_port, port=_free_port())
    yield environment, f"http://127.0.0.1:{ui_port}"
    await environment.shutdown()


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with headless(chromium) as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with new_page(browser, 1600, 1000, TIMEOUT_MS) as opened:
        yield opened


async def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def workflow_url(ui: str, cid: str, run_id: str, tab: str) -> str:
    return f"{ui}/namespaces/default/workflows/{quote(cid)}/{run_id}/{tab}"


def demo_agents(db: Database, email_needs_approval: bool = False) -> AgentRegistry:
    model = ScriptedChatCompletionClient()
    return AgentRegistry(
        [claims_assistant(model, db.sessions, email_needs_approval=email_needs_approval)]
    )


async def test_the_demo_conversations_page_shows_status_activities_and_search_attributes(
    db: Database, ui_server: tuple[WorkflowEnvironment, str], page: Page
) -> None:
    environment, ui = ui_server
    client = environment.client
    conversations = Conversations(client, f"tq-ui-{new_id()}")
    cid = new_id("demo")
    worker = build_worker(
        client,
        conversations.task_queue,
        db,
        demo_agents(db),
        None,
        await has_search_attributes(client),
    )
    async with worker:
        for number, text in enumerate(TURNS, start=1):
            await conversations.ask(cid, text, f"m-{number}")
        run_id = (await conversations.handle(cid).describe()).run_id
        assert run_id is not None

        await page.goto(workflow_url(ui, cid, run_id, "history"))
        await expect(page.get_by_test_id("workflow-id-heading")).to_contain_text(cid)
        await expect(page.get_by_test_id("execution-status")).to_have_text("Running")
        events = page.get_by_test_id("event-summary-row")
        for summary in [
            "call tool: get_claim_status(claim_id=123)",
            'call tool: create_claim_note(claim_id=123, text="The customer called.")',
            'call tool: send_customer_email(claim_id=123, subject="Update on claim 123"',
            "model: claims-assistant (turn 3, step 2)",
        ]:
            await expect(events.filter(has_text=summary)).to_have_count(1)
        await screenshot(page, "demo-history")

        await page.get_by_test_id("search-attributes-tab").click()
        attributes = page.locator("main")
        for shown in ['"AgentName": "claims-assistant"', '"ConversationStatus": "idle"']:
            await expect(attributes).to_contain_text(shown)
        await expect(attributes).to_contain_text('"TurnCount": 3')
        await screenshot(page, "demo-search-attributes")

        await page.get_by_test_id("user-metadata-tab").click()
        for frame, text in [
            ("#user-metadata-summary", "conversation with claims-assistant"),
            ("#user-metadata-details", "Agent: claims-assistant"),
            ("#user-metadata-current-details", "idle after turn 3"),
        ]:
            await expect(page.frame_locator(frame).locator("body")).to_contain_text(text)
        await screenshot(page, "demo-user-metadata")

        await conversations.end(cid)
        await conversations.handle(cid).result()
    await page.goto(workflow_url(ui, cid, run_id, "search-attributes"))
    await expect(page.get_by_test_id("execution-status")).to_have_text("Completed")
    await expect(page.locator("main")).to_contain_text('"ConversationStatus": "ended"')
    await screenshot(page, "demo-completed")


async def test_a_conversation_waiting_for_approval_is_found_by_its_search_attributes(
    db: Database, ui_server: tuple[WorkflowEnvironment, str], page: Page
) -> None:
    environment, ui = ui_server
    client: Client = environment.client
    address = client.service_client.config.target_host
    conversations = Conversations(client, f"tq-ui-{new_id()}")
    cid = new_id("approval")
    agents = demo_agents(db, email_needs_approval=True)
    indexed = await has_search_attributes(client)
    async with build_worker(client, conversations.task_queue, db, agents, None, indexed):
        turn = asyncio.create_task(
            conversations.ask(cid, "email the customer about claim 123", "m-1")
        )
        assert await listed(client, WAITING, cid)

        await page.goto(f"{ui}/namespaces/default/workflows?query={quote(WAITING)}")
        await expect(page.get_by_role("link", name=cid, exact=True)).to_be_visible()
        await screenshot(page, "waiting-approval-list")
        out = await temporal(address, "workflow", "list", "--query", WAITING)
        assert cid in [w["execution"]["workflowId"] for w in json.loads(out)]

        await page.get_by_role("link", name=cid, exact=True).click()
        await page.get_by_test_id("user-metadata-tab").click()
        details = page.frame_locator("#user-metadata-current-details").locator("body")
        await expect(details).to_contain_text("turn 1: approve send_customer_email?")
        await screenshot(page, "waiting-approval-details")

        call_id = (await conversations.state(cid)).pending_approvals[0].tool_call_id
        await conversations.decide(cid, ToolDecision(tool_call_id=call_id, approve=True))
        assert (await turn).tool_calls[0].status == "ok"


async def test_a_failed_conversation_shows_why(
    db: Database, ui_server: tuple[WorkflowEnvironment, str], page: Page
) -> None:
    environment, ui = ui_server
    client = environment.client
    conversations = Conversations(client, f"tq-ui-{new_id()}")
    cid = new_id("failed")
    indexed = await has_search_attributes(client)
    async with build_worker(client, conversations.task_queue, db, demo_agents(db), None, indexed):
        handle = await conversations.start(cid, StartConversation(agent="nobody"))
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    await page.goto(workflow_url(ui, cid, handle.result_run_id or "", "search-attributes"))
    await expect(page.get_by_test_id("execution-status")).to_have_text("Failed")
    await expect(page.locator("main")).to_contain_text('"ConversationStatus": "failed"')
    await screenshot(page, "failed-search-attributes")
    # current details come from a query, which needs a worker: a closed run shows its failure
    await page.get_by_test_id("history-tab").click()
    await expect(page.locator("main")).to_contain_text("cannot start agent 'nobody'")
    await screenshot(page, "failed-history")
