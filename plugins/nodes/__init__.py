"""The built-in graph nodes, one module each, each registered through its own entry point like a third party's."""
