"""Bring-your-own-agent examples: the claims assistant written as an ordinary AutoGen
`AssistantAgent` and as an ordinary LlamaIndex `FunctionAgent`, registered unchanged."""

from examples.register import register_examples

__all__ = ["register_examples"]
