"""mdspec: programming in markdown.

Kept empty of imports on purpose: the post-commit fast path imports this package, and every import here
would be paid on every `git commit`.
"""

__version__ = "0.1.0"
