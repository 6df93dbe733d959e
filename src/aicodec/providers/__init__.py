"""Model providers: anthropic (Claude), openai-compatible servers, offline mutation, replay."""
