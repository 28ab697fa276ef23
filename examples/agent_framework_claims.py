"""The claims assistant as an ordinary Microsoft Agent Framework `Agent`."""

from __future__ import annotations

from agent_framework import Agent, SupportsChatGetResponse

from demo.claims import Sessions
from examples.claims_functions import SYSTEM_MESSAGE, claims_functions


def claims_assistant(client: SupportsChatGetResponse, sessions: Sessions) -> Agent:
    """`client` is the user's own, e.g. `agent_framework.openai.OpenAIChatCompletionClient`."""
    return Agent(
        client=client,
        name="claims_assistant",
        instructions=SYSTEM_MESSAGE,
        tools=claims_functions(sessions),  # plain typed functions: Agent makes them tools
    )
