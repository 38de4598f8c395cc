"""Traceability: from a line of code to the spec words behind it, and from a spec change to its code."""
