"""Embeddings: the embedder protocol, sentence-transformers, the ONNX question encoder, the query adapter."""
