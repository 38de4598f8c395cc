"""The post-commit fast path: runs inside every `git commit`, so it imports only `os`, `sys` and itself.

Nothing here may import another part of mdspec (a test reads the imports): the slow path (config loading,
a foreground run, the crash log) is handed in by the caller.
"""
