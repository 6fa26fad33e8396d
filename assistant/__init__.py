"""Offline, citation-first question answering over a folder of documents."""

from .config import Settings, load_settings
from .errors import AssistantError
from .pipeline import Answer, Assistant, Citation

__all__ = ["Answer", "Assistant", "AssistantError", "Citation", "Settings", "load_settings"]
