"""The claims assistant as an ordinary LlamaIndex `FunctionAgent`."""

from __future__ import annotations

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import LLM
from llama_index.core.tools import FunctionTool

from demo.claims import Sessions
from examples.claims_functions import SYSTEM_MESSAGE, claims_functions


def claims_assistant(llm: LLM, sessions: Sessions) -> FunctionAgent:
    # always pass llm=: without it LlamaIndex falls back to Settings.llm, which is OpenAI
    tools = [FunctionTool.from_defaults(async_fn=f) for f in claims_functions(sessions)]
    return FunctionAgent(
        name="claims_assistant", llm=llm, tools=tools, system_prompt=SYSTEM_MESSAGE
    )
