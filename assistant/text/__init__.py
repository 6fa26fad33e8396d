"""Text utilities every stage shares: lexical terms and literal Markdown."""
