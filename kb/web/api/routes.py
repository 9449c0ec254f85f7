"""API routes (placeholder)."""
