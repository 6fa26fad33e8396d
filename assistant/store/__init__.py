"""The index: build, hold, save, load and keep up to date with the documents."""
