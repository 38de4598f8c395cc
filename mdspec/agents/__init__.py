"""The agents: the built-in loop on the Messages API, its tools, the prompt, and the command backend."""
