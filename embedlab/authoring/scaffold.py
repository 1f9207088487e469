"""``embedlab plugins new NAME [--kind analysis|trainer]``: scaffold a pip-installable plugin.

``--kind trainer`` writes the plugin guide's worked trainer (section "A worked trainer",
renamed; the guide is the one copy of its code) with tests built on
:func:`embedlab.testing.assert_trainer_contract`; its templates in ``templates/trainer/``
replace those of the analysis plugin with the same path.

The generated ``embedlab-NAME/`` folder is a complete distribution: ``setup.cfg`` declaring
the ``embedlab`` entry point, ``pyproject.toml`` (setuptools), a module with an example
analysis that uses every part of the analysis contract, a test built on
:mod:`embedlab.authoring.testing`, and a README saying how to use, test and publish it. It installs and
its test passes as generated (embedlab's own test suite checks that).

The templates live in ``embedlab/templates/plugin/`` (package data). File names end in
``.tmpl`` so that no tool mistakes them for code; ``MODULE`` in a path and ``{{key}}`` in a
file are replaced by the values of :func:`plugin_names`.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Iterator

from embedlab.errors import UsageError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
TEMPLATE_SUFFIX = ".tmpl"
RENAMES = {"gitignore": ".gitignore"}


KINDS = ("analysis", "trainer")


def plugin_names(name: str, kind: str = "analysis") -> dict[str, str]:
    """Every name derived from the plugin name, as the templates use them.

    ``name`` is the analysis name (``embedlab analyze --only NAME``) and the entry-point
    name; the distribution is ``embedlab-NAME``, the importable module ``embedlab_NAME``
    (hyphens become underscores) and option names carry the ``NAME_`` prefix so that their
    flags (``--NAME-...``) never collide with another analysis's.
    """
    if not NAME_PATTERN.match(name or ""):
        raise UsageError(
            f"plugin name {name!r} is not usable: use lower-case letters and digits, "
            f"words joined by single hyphens, starting with a letter (e.g. 'norms' "
            f"or 'genre-separation')"
        )
    from embedlab._version import __version__

    snake = name.replace("-", "_")
    words = name.split("-")
    values = {
        "name": name,
        "distribution": f"embedlab-{name}",
        "module": f"embedlab_{snake}",
        "option_prefix": snake,
        "class_name": "".join(w.capitalize() for w in words) + "Analysis",
        "title": " ".join(words).capitalize() + ": category separation",
        "embedlab_version": __version__,
        "kind": kind,
    }
    if kind == "trainer":
        values["class_name"] = "".join(w.capitalize() for w in words) + "Trainer"
        values["title"] = " ".join(words).capitalize() + ": a matrix-factorisation trainer"
        values["trainer_source"] = trainer_source(name, values["class_name"])
    return values


def trainer_source(name: str, class_name: str) -> str:
    """The guide's worked trainer (its first code block), renamed to ``name``/``class_name``."""
    import re

    from embedlab.authoring.guide import guide_section, guide_text

    body = guide_section("A worked trainer", guide_text())
    code = re.findall(r"^```python\n(.*?)^```", body, flags=re.S | re.M)[0]
    code = (
        code.replace('"plain-mf"', repr(name).replace("'", '"'))
        .replace("PlainMF", class_name)
        .replace("plain-mf:", f"{name}:", 1)
    )
    return code + '\n__version__ = "0.1.0"  # setup.cfg reads it (version = attr: ...)\n'


def _templates(kind: str = "plugin"):
    """The template folder (a Traversable: a plain folder in any ordinary installation)."""
    return resources.files("embedlab.authoring") / "templates" / kind


def template_files(kind: str = "analysis") -> Iterator[tuple[str, str]]:
    """(relative path with placeholders, template text) for every template file, sorted; a
    ``trainer`` takes the analysis plugin's files with ``templates/trainer/``'s in their place."""
    if kind == "trainer":
        own = dict(template_files_in(_templates("trainer")))
        yield from sorted({**dict(template_files("analysis")), **own}.items())
        return
    yield from template_files_in(_templates())


def template_files_in(root) -> Iterator[tuple[str, str]]:
    """(relative path, text) of every template under ``root``, sorted."""

    def walk(node, prefix: str) -> Iterator[tuple[str, str]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    yield from walk(child, rel + "/")
            elif child.name.endswith(TEMPLATE_SUFFIX):
                yield rel, child.read_text(encoding="utf-8")

    if not root.is_dir():
        raise UsageError(
            "embedlab's plugin templates are missing from this installation "
            "(embedlab/templates/plugin); reinstall embedlab"
        )
    yield from walk(root, "")


def render(text: str, values: dict[str, str]) -> str:
    """Replace every ``{{key}}``; an unknown key is a bug in the templates, not the user's."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def target_path(rel: str, values: dict[str, str]) -> str:
    parts = rel[: -len(TEMPLATE_SUFFIX)].split("/")
    parts = [RENAMES.get(p, p).replace("MODULE", values["module"]) for p in parts]
    return "/".join(parts)


def scaffold(name: str, parent: str | Path = ".", kind: str = "analysis") -> Path:
    """Create ``parent/embedlab-NAME/`` from the templates; returns its path.

    The folder appears whole or not at all (written beside it, then renamed); an existing
    path is never touched.
    """
    from embedlab.io.atomic import atomic_dir

    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    values = plugin_names(name, kind)
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"--dir {str(parent)!r} is a file, not a folder")
    target = parent / values["distribution"]
    from embedlab.io.ownership import check_new  # the write rule: a new folder only

    check_new(target)
    files = [(target_path(rel, values), render(text, values)) for rel, text in template_files(kind)]
    with atomic_dir(target) as tmp:
        for rel, text in files:
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return target
