"""The run engine: the pending set, the worker, the worktree, guards, landing and recovery, records."""
