"""Claims teams: ordinary AutoGen `AssistantAgent`s registered as durable teams.

- `claims-team` (handoff): `triage` answers status and policy questions and hands claim
  changes to `claims_specialist`, who keeps the conversation until it hands back. Each
  user turn ends with the active agent's text answer (LlamaIndex AgentWorkflow's rule).
- `claims-round-robin`: an AutoGen `RoundRobinGroupChat` of the specialist and a
  `reviewer`, until the reviewer says APPROVED or 5 messages.
- `claims-selector`: an AutoGen `SelectorGroupChat` of all three, until a member says
  TERMINATE or 8 messages; the team's model picks each next speaker.

With no model client given, every member gets the scripted model under its own name, so
the teams run offline and deterministically (demo/scripted_model.py).

`python -m examples.claims_team` runs a short conversation with `claims-team` on the
embedded dev server and prints who spoke. `worker.py` registers these teams too
(worker.default_agents), so a client can start a conversation with `agent="claims-team"`.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import FunctionTool

from agents.adapters import from_autogen_team, team
from agents.definitions import TeamDefinition
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.claims import Sessions
from demo.scripted_model import ScriptedChatCompletionClient
from devserver import start_dev_server, worker_process
from examples.claims_functions import TOOL_OPTIONS, claims_functions
from interface import StartConversation

TRIAGE = (
    "You are the first contact for insurance claims. Answer questions about a claim's "
    "status and about policies. Hand anything that changes a claim (notes, emails to the "
    "customer) to the claims specialist."
)
SPECIALIST = (
    "You are a claims specialist. Add notes to claims and email customers. Hand questions "
    "you cannot handle back to triage."
)
REVIEWER = "You review the specialist's work. Say APPROVED when it is complete."

ClientFor = Callable[[str], ChatCompletionClient]


def claims_agents(sessions: Sessions, client_for: ClientFor) -> dict[str, AssistantAgent]:
    """triage, claims_specialist and reviewer, each with its own model client."""
    tools = {
        f.__name__: FunctionTool(f, description=f.__doc__ or f.__name__)
        for f in claims_functions(sessions)
    }

    def agent(name: str, system: str, tool_names: list[str], **options: object) -> AssistantAgent:
        return AssistantAgent(
            name,
            model_client=client_for(name),
            tools=[tools[t] for t in tool_names],
            system_message=system,
            reflect_on_tool_use=True,
            **options,  # type: ignore[arg-type]
        )

    return {
        "triage": agent(
            "triage",
            TRIAGE,
            ["lookup_policy", "get_claim_status"],
            handoffs=["claims_specialist"],
            description="Answers claim status and policy questions.",
        ),
        "claims_specialist": agent(
            "claims_specialist",
            SPECIALIST,
            ["get_claim_status", "create_claim_note", "send_customer_email"],
            handoffs=["triage"],
            description="Adds notes to claims and emails customers.",
        ),
        "reviewer": agent("reviewer", REVIEWER, [], description="Reviews the specialist's work."),
    }


def claims_team(sessions: Sessions, client_for: ClientFor) -> TeamDefinition:
    """Triage and a claims specialist, with handoffs both ways."""
    agents = claims_agents(sessions, client_for)
    return team(
        "claims-team",
        [agents["triage"], agents["claims_specialist"]],
        mode="handoff",
        stop_on_text_reply=True,
        max_turns=4,
        tools=TOOL_OPTIONS,
    )


def register_teams(
    registry: AgentRegistry, sessions: Sessions, model_client: ChatCompletionClient | None = None
) -> None:
    """What a user adds to the worker: each team under its name."""

    def client_for(name: str) -> ChatCompletionClient:
        return model_client or ScriptedChatCompletionClient(name)

    def round_robin() -> RoundRobinGroupChat:
        agents = claims_agents(sessions, client_for)
        return RoundRobinGroupChat(
            [agents["claims_specialist"], agents["reviewer"]],
            termination_condition=(
                TextMentionTermination("APPROVED", sources=["reviewer"]) | MaxMessageTermination(5)
            ),
        )

    def selector() -> SelectorGroupChat:
        agents = claims_agents(sessions, client_for)
        return SelectorGroupChat(
            list(agents.values()),
            model_client=model_client or ScriptedChatCompletionClient(),
            termination_condition=(
                TextMentionTermination("TERMINATE", sources=list(agents)) | MaxMessageTermination(8)
            ),
        )

    registry.add("claims-team", lambda: claims_team(sessions, client_for))
    registry.add("claims-round-robin", lambda: from_autogen_team(round_robin(), tools=TOOL_OPTIONS))
    registry.add("claims-selector", lambda: from_autogen_team(selector(), tools=TOOL_OPTIONS))


async def _demo() -> None:
    """A conversation with `claims-team`, served by `worker.py` in a child process (it
    registers these teams): this module stays below the entry points it would import."""
    env = await start_dev_server()
    folder = Path(tempfile.mkdtemp(prefix="claims-team-"))
    conversations = Conversations(env.client, f"claims-team-{uuid.uuid4().hex[:6]}")
    start, cid = StartConversation(agent="claims-team"), f"team-{uuid.uuid4().hex[:6]}"
    try:
        async with worker_process(
            database_url=f"sqlite:///{folder}/agents.db",
            temporal_address=env.client.service_client.config.target_host,
            task_queue=conversations.task_queue,
            log=folder / "worker.log",
        ):
            for number, text in enumerate(DEMO_TURNS, 1):
                result = await conversations.ask(cid, text, f"m-{number}", start)
                print(f"user: {text}")
                print(f"  speakers: {' -> '.join(result.speakers)}")
                calls = ", ".join(f"{c.speaker}:{c.name}" for c in result.tool_calls)
                print(f"  tool calls: {calls or '-'}")
                print(f"  {result.speaker}: {result.reply}")
            state = await conversations.state(cid)
            print(f"active agent: {state.active_agent}")
            await conversations.end(cid)
    finally:
        await env.shutdown()


DEMO_TURNS = [
    "Check policy status for claim 123",
    "add a note that the customer called",
    "email the customer an update",
]


if __name__ == "__main__":
    asyncio.run(_demo())
