"""Where the packaged templates and the plain git hook shim live, and `{{name}}` rendering."""

from __future__ import annotations

import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # Installed: mdspec/templates (the wheel maps the top-level dir there); from a checkout: ../templates.
    for d in (_HERE / name, _HERE.parent / name):
        if d.is_dir():
            return d
    raise FileNotFoundError(f"mdspec's {name}/ directory is missing from the installation")


def template_dir() -> Path:
    return _find("templates")


def read(name: str) -> str:
    return (template_dir() / name).read_text(encoding="utf-8")


def hook_shim() -> str:
    return (_find("hooks") / "post-commit").read_text(encoding="utf-8")


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def render(text: str, **values: str) -> str:
    """Replace `{{name}}` placeholders in one pass over the template; braces elsewhere (code in markdown)
    and names not given are left alone.

    One pass: a value is never searched again, so a spec commit whose text contains `{{listing}}` reaches
    the prompt as written, not with the file listing expanded inside it.
    """
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
