"""The domain errors. Translated to user messages only at the edges (CLI, UI)."""


class AssistantError(Exception):
    """Base class: a problem the user can act on, with a one-line message."""


class UsageError(AssistantError):
    """The request itself is wrong: empty or over-long question, bad argument."""


class NoDocumentsError(AssistantError):
    """The seeds folder is missing or holds no readable document."""


class ModelNotFoundError(AssistantError):
    """The embedding model folder cannot be found or loaded."""


class SettingsError(AssistantError):
    """A settings file (assistant/calibration.json) that cannot be read."""


class IndexLoadError(AssistantError):
    """The saved index is unreadable, corrupt or does not match the settings."""


class CitationNotFoundError(AssistantError):
    """A citation ID that names no known document or is malformed."""


class DocumentError(AssistantError):
    """A file that cannot be added as a document: its type, size, name or content."""


class StoreError(AssistantError):
    """The index store (a Milvus server) cannot be reached or refused a request."""


class StoreConflict(StoreError):
    """Another builder switched a shared store's live version while this one built."""
