"""Events: what changed, handed to subscribers only after the change committed."""
