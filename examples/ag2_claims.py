"""The claims assistant in AutoGen classic (AG2) style: an `AssistantAgent` with an
`llm_config`, and a `UserProxyAgent` that executes its functions.

Register the pair as it is: `registry.add("claims-ag2", lambda: claims_agents(llm_config,
sessions), tools=TOOL_OPTIONS)`.
"""

from __future__ import annotations

from typing import Any

from autogen import AssistantAgent, UserProxyAgent, register_function

from demo.claims import Sessions
from examples.claims_functions import SYSTEM_MESSAGE, claims_functions

__all__ = ["claims_agents"]


def claims_agents(
    llm_config: dict[str, Any], sessions: Sessions
) -> tuple[AssistantAgent, UserProxyAgent]:
    """The assistant proposes the calls; the user proxy runs them."""
    assistant = AssistantAgent(
        name="claims_assistant", system_message=SYSTEM_MESSAGE, llm_config=llm_config
    )
    user_proxy = UserProxyAgent(
        name="user",
        human_input_mode="NEVER",
        code_execution_config=False,
        max_consecutive_auto_reply=5,
        is_termination_msg=lambda m: (m.get("content") or "").rstrip().endswith("TERMINATE"),
    )
    for f in claims_functions(sessions):
        register_function(
            f, caller=assistant, executor=user_proxy, description=f.__doc__ or f.__name__
        )
    return assistant, user_proxy
