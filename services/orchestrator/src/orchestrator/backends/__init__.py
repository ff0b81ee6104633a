"""Where tasks run: one ExecutionBackend protocol (base.py), one module per engine."""
