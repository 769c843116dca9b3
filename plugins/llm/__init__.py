"""What the language-model policies share: ``LLMPolicy`` (every role as prompt → reply → parse, with one retry and a
record of each call), the role prompts under ``prompts/``, reply parsing, and the per-role usage summary."""

from plugins.llm.policy import Completion, LLMPolicy, LLMUnavailable, share
from plugins.llm.replies import ReplyError
from core.llm_usage import usage_summary, usage_table

__all__ = ["Completion", "LLMPolicy", "LLMUnavailable", "ReplyError", "share", "usage_summary", "usage_table"]
