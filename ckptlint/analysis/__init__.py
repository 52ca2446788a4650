"""Shared analysis that rules ask, never redo: names, calls, "what does this hold?"."""
