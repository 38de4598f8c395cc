"""Where the packaged templates and the plain git hook shim live, and `{{name}}` rendering."""

from __future__ import annotations

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


def render(text: str, **values: str) -> str:
    """Replace `{{name}}` placeholders; braces elsewhere (code in markdown) are left alone."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
