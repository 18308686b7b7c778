"""A resumable feed of what arrives in a queue, and exports for a time range."""
