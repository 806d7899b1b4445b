"""The ``MCPRegistry`` custom resource, one concern per module (import from the module itself):

- ``identity``: group, version, kind and names of the resource, its annotations, the limits and the
  name formats the schema enforces.
- ``cel``: the small helper language that writes CEL rules (``x-kubernetes-validations``) into the
  models' JSON schema.
- ``durations``: Go duration parsing (``syncPolicy.interval``).
- ``base``: what every spec and status model shares (naming, unknown fields, JSON integers, Secret
  references).
- ``source``, ``sync_policy``, ``filter``, ``validation``, ``storage``, ``api``, ``signing``: the parts
  of ``spec``.
- ``registry``: ``MCPRegistrySpec``, the root CEL rule on ``metadata.name`` and the whole object.
- ``status``: phases, conditions and the ``status`` models.

The models are the single source of truth for the resource's shape: ``mcpreg_dev.crd`` turns their
JSON schema into the CRD's structural schema, so descriptions, enums, patterns, bounds, defaults and
CEL rules written here are what ``kubectl explain`` shows and what the API server enforces. The API
server is the one enforcer of the CEL rules; the models do not re-implement them, they parse what it
admitted. Unknown fields are ignored, so an operator survives a newer CRD. The few checks whose
absence would be unsafe (a git URL that reads local files or carries credentials, a ref that reads
as an option, a name that reaches past the registry's namespace) are repeated where the value is
used: the git client and the source and storage factories.

Conventions: Python attributes are snake_case, the wire format is camelCase (aliases). Dump with
``model_dump(mode="json", exclude_none=True)``: ``None`` means "absent" and is never written as
``null`` (the CRD schema has no nullable fields; in a JSON merge patch ``null`` deletes a field).
"""
