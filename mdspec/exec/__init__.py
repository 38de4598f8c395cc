"""How mdspec starts a command: process groups with time limits and redacted logs, and the sandbox.

Below both the run engine and the agents, which start commands alike (the check; the command backend and
the built-in agent's shell), so neither has to import the other for it.
"""
