"""Ingest: read documents (decode, repair, titles, sections, offsets) and cut them into chunks."""
