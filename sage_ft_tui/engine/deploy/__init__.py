"""After training: merge the adapter, serve it (vLLM or transformers serve), chat with it."""
