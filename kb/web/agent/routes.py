"""Agent routes (placeholder)."""
