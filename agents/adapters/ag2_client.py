"""An AG2 agent's model client, kept apart from the adapter so that workers and activities
import AG2 (a slow import) only when an AG2 agent is registered or called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autogen import OpenAIWrapper

__all__ = ["AG2Client", "AG2Selection", "TerminationRule"]

TerminationRule = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class AG2Selection:
    """A GroupChat's `speaker_selection_method="auto"` prompts, as AG2 uses them."""

    message_template: str
    prompt_template: str | None
    multiple_template: str
    none_template: str
    attempts: int
    role: str


@dataclass
class AG2Client:
    """An AG2 agent's model: its `llm_config`, called through AG2's `OpenAIWrapper`."""

    llm_config: dict[str, Any]
    """The agent's `llm_config` as a dict, without its `tools` (the definition has them)."""
    is_termination_msg: TerminationRule | None = None
    """The rule of the agent receiving the answers (the executor): it ends the turn."""
    agent_name: str = ""
    selector: AG2Selection | None = None
    """Set for a group chat's manager: it picks the next speaker."""

    @cached_property
    def wrapper(self) -> OpenAIWrapper:
        """Built once, on first use: each config entry with `max_retries=0`, no cache, and
        every provider SDK client it holds without retries (AG2's Anthropic client, for
        one, does not pass `max_retries` on)."""
        return self._wrapper({})

    @cached_property
    def streaming_wrapper(self) -> OpenAIWrapper:
        """`wrapper` with `stream=True` in each config entry: an entry's own `stream` (False
        by default in an `LLMConfig`) outranks `create(stream=True)`."""
        return self._wrapper({"stream": True})

    def _wrapper(self, override: dict[str, Any]) -> OpenAIWrapper:
        from autogen import OpenAIWrapper  # only workers that call an AG2 model load AG2

        config = {k: v for k, v in self.llm_config.items() if k != "tools"}
        config["cache_seed"] = None
        entries = config.pop("config_list", None) or [{}]
        config_list = [
            {**entry, "max_retries": 0, "cache_seed": None, **override} for entry in entries
        ]
        wrapper = OpenAIWrapper(config_list=config_list, **config)
        for client in wrapper._clients:
            for attr in ("_oai_client", "_client"):
                sdk: Any = getattr(client, attr, None)
                if isinstance(getattr(sdk, "max_retries", None), int) and hasattr(
                    sdk, "with_options"
                ):
                    setattr(client, attr, sdk.with_options(max_retries=0))
        return wrapper

    @property
    def response_format(self) -> Any:
        found = self.llm_config.get("response_format")
        for entry in self.llm_config.get("config_list") or []:
            found = entry.get("response_format") or found
        return found
