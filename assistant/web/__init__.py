"""The web UI and its server: the page, its handlers and API, formatting, batching."""
