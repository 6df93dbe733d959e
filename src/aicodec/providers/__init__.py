"""Model providers: anthropic (Claude), openai-compatible servers, the offline tuner and
mutation searches, replay."""
