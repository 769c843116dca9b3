"""Search backends that turn a task into model cards for the retrieve node (the offline catalogue lives here)."""
