"""What a run knows about the files around it: settings, exclusion, module names, the
project walk, the cache and the process pool (see docs/architecture.md)."""
