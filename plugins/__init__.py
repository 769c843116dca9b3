"""mlestar's built-in plugins: nodes, policies, metrics and the local executor, each registered by entry point."""
