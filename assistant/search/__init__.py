"""Search: a question read into a Query (what it asks for included), and passages ranked for it."""
