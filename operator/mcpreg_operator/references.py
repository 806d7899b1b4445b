"""References into other namespaces, refused (issue 17).

Every object an MCPRegistry names (its source ConfigMap, the git and S3 credentials Secrets) is read
from the MCPRegistry's own namespace: the operator can read every namespace, the person who wrote the
MCPRegistry perhaps only theirs, and must not borrow the operator's reach. A reference may carry a
`namespace` only so that naming another one is refused with a message (no CEL rule can compare a field
with `metadata.namespace`); this module finds every such reference in a spec, wherever in the model
tree it sits, so a reference added later is covered without being listed here.
"""

from __future__ import annotations

from pydantic import BaseModel

from mcpreg_operator.spec.base import NamespacedReference

REASON = "CrossNamespaceReference"


def _walk(model: BaseModel, path: str) -> list[tuple[str, NamespacedReference]]:
    found: list[tuple[str, NamespacedReference]] = []
    if isinstance(model, NamespacedReference):
        found.append((path, model))
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{path}.{info.alias or name}"
        items = value if isinstance(value, list | tuple) else [value]
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                found.extend(_walk(item, f"{where}[{index}]" if item is not value else where))
    return found


def foreign_references(spec: BaseModel, namespace: str) -> list[str]:
    """One message per reference naming a namespace other than `namespace`, by its field path."""
    problems = []
    for path, ref in _walk(spec, "spec"):
        if ref.namespace and ref.namespace != namespace:
            problems.append(
                f"{path}.namespace is {ref.namespace!r}: references into other namespaces are refused; "
                f"the object must be in the MCPRegistry's namespace {namespace!r}"
            )
    return problems
