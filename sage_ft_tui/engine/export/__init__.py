"""Export a run's merged model: GGUF (llama.cpp / Ollama) with its tokenizer, chat
template and an Ollama Modelfile, or an HF folder (safetensors, sharded), optionally
pushed to the Hub. Output in RunLayout(run).export_dir; nothing there that is not ours
is ever replaced. Nothing here imports torch at module level."""
