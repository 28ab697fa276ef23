"""The claims assistant as an ordinary AutoGen `AssistantAgent`."""

from __future__ import annotations

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import FunctionTool

from demo.claims import Sessions
from examples.claims_functions import SYSTEM_MESSAGE, claims_functions


def claims_assistant(model_client: ChatCompletionClient, sessions: Sessions) -> AssistantAgent:
    return AssistantAgent(
        name="claims_assistant",
        model_client=model_client,
        tools=[
            FunctionTool(f, description=f.__doc__ or f.__name__) for f in claims_functions(sessions)
        ],
        system_message=SYSTEM_MESSAGE,
        reflect_on_tool_use=True,
        max_tool_iterations=3,
    )
