"""Result tables and files: SimAI-compatible CSV, JSON, text tables, plots."""
