"""Tasks: what a caller asks for (the model), where it is kept (the store), and what
toolman is told about it (the policy)."""
