"""The transformers family: any Hugging Face ``transformers`` checkpoint of a supported task, built by
transformers from its config (never from code in the checkpoint) and loaded by zoo."""
