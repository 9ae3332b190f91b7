"""The package layers (docs/internals.rst): no module imports from a layer above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sk_medcnn

PACKAGE = Path(sk_medcnn.__file__).parent

#: What each lower layer may import from the rest of sk_medcnn, at module level.
ALLOWED = {
    "utils": {"utils", "exceptions", "_version"},
    "registry": {"registry", "exceptions", "utils", "_version"},
    "_engine": {"_engine", "utils", "_distributed", "exceptions"},
}
#: The building blocks (architectures, transformers, readers, ...) and the
#: estimators must not import these features built on top of them.
FEATURES = {
    "persistence",
    "metrics",
    "inspection",
    "robustness",
    "conformal",
    "recipes",
    "export",
    "serve",
    "cli",
    "embedding",
    "evaluation",
}
BUILDING_BLOCKS = {
    "architectures",
    "preprocessing",
    "augmentation",
    "io",
    "datasets",
    "losses",
    "pretrained",
    "_ood",
    "_card",
    "_distributed",
}
#: Imports inside a function that reach up a layer, each for a stated reason.
LAZY_EXCEPTIONS = {
    # pretrained=<a .skmed file> reads it with the safe loader, which itself
    # rebuilds estimators: the one import that must wait for the call
    ("sk_medcnn.estimators._pretrained", "sk_medcnn.persistence"),
    # a model card's figures, computed only when a card is asked for
    ("sk_medcnn._card", "sk_medcnn.metrics"),
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> list[tuple[str, str, bool]]:
    """(importing module, imported sk_medcnn module, at module level) triples."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        module = ".".join(relative.parts[:-1] if is_package else relative.parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        top |= {
            id(child)
            for node in tree.body
            if isinstance(node, ast.If)  # if TYPE_CHECKING: counts as module level
            for child in node.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = (
                [f"sk_medcnn.{alias.name}" for alias in node.names]
                if target == "sk_medcnn"
                else [target]
            )
            for name in targets:
                if name.startswith("sk_medcnn."):
                    found.append((module, name, id(node) in top))
    return found


IMPORTS = _imports()


def test_the_import_scan_sees_the_package():
    # a scan that finds nothing would pass every check below
    assert len(IMPORTS) > 200
    assert ("sk_medcnn.estimators._base", "sk_medcnn._engine", True) in {
        (a, ".".join(b.split(".")[:2]), top) for a, b, top in IMPORTS
    }


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_low_layers_import_only_what_is_below_them(layer):
    wrong = [
        f"{module} imports {target}"
        for module, target, _ in IMPORTS
        if _layer(module) == layer and _layer(target) not in ALLOWED[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_building_blocks_and_estimators_do_not_import_the_features():
    wrong = []
    for module, target, _top in IMPORTS:
        source, reached = _layer(module), _layer(target)
        above = FEATURES | (
            {"estimators", "_engine"} if source in BUILDING_BLOCKS else set()
        )
        if source not in BUILDING_BLOCKS | {"estimators"} or reached not in above:
            continue
        if (module, ".".join(target.split(".")[:2])) in LAZY_EXCEPTIONS:
            continue
        wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_lazy_exceptions_are_still_needed():
    # an exception no longer used should be removed from the list
    used = {
        (module, ".".join(target.split(".")[:2]))
        for module, target, top in IMPORTS
        if not top
    }
    assert LAZY_EXCEPTIONS <= used
