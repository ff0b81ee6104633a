"""Content-addressed skipping: the hash of a step's inputs (keys) and the record of the
steps that succeeded with them (store)."""
