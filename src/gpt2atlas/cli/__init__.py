"""The `gpt2atlas` command line."""
