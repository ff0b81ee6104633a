"""The controller: starts pending tasks in order within the concurrency limit
(scheduler.py), follows each active task to its end (lifecycle.py), and turns a stored
task into what a backend launches (launches.py)."""
