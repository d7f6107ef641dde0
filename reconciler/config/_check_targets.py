"""The semantic checks of the ``targets`` section: each target's type, branch and API URL."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigError, Problem, SecretError
from ._analyser import Analyser
from ._locations import NodePath
from ._model import Guard, Safety, TargetConfig
from ._schema import validate_branch
from ._secrets import FILE_PREFIX, env_var, read_secret_file, secret_file
from ._targets import TARGET_TYPES as TARGET_KINDS
from ._targets import TargetType, branch, target_type

__all__ = ["TargetChecks", "guard_settings", "url_problem"]


def guard_settings(raw: Mapping[str, Any] | None) -> dict[str, float | int | None]:
    """The settings a ``guards:`` mapping names (already checked by the schema), typed: the
    shares as floats, the counts as integers, null kept (it switches a guard off)."""
    out: dict[str, float | int | None] = {}
    for key, value in (raw or {}).items():
        if value is None:
            out[key] = None
        elif key.endswith("_share"):
            out[key] = float(value)
        else:
            out[key] = int(value)
    return out


def url_problem(text: str) -> str | None:
    """Why ``text`` cannot be a target's API URL (None when it can): it must be ``http(s)://``
    with a host and a valid port, and carry no credentials (``user:password@``), which must
    come from environment variables instead. The message never echoes the URL."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        message = str(exc)
        if "Port" in message or "port" in message:
            return "the port is not a number from 1 to 65535"
        return f"not a valid URL ({message})"
    if parts.username is not None or parts.password is not None:
        return (
            "credentials must be an ${ENV_VAR} reference in the credential fields, "
            "not part of the URL (user:password@)"
        )
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "no host in the URL"
    if port == 0:
        return "the port is not a number from 1 to 65535"
    return None


class TargetChecks(Analyser):
    """The ``targets`` section."""

    def targets(self, data: Mapping[str, Any]) -> dict[str, TargetConfig]:
        out: dict[str, TargetConfig] = {}
        for name, raw in data.items():
            node: NodePath = ("targets", name)
            if self.bad(node) or not isinstance(raw, Mapping):
                continue
            ttype = self.target_type(node, raw)
            if ttype is None:
                continue
            settings: dict[str, Any] = {}
            for key, default in ttype.settings.items():
                value = raw.get(key, default)
                if key in ttype.paths and value is not None:
                    text, outside = (
                        (value, False)
                        if isinstance(value, str)
                        else (value["path"], bool(value.get("outside_config_dir", False)))
                    )
                    pnode = (*node, key) if isinstance(value, str) else (*node, key, "path")
                    value = self.confined(
                        text,
                        pnode,
                        outside,
                        f"write {key}: {{path: {text}, outside_config_dir: true}}",
                    )
                if isinstance(value, str) and key in ttype.urls:
                    why = url_problem(value)
                    if why is not None:
                        self.report((*node, key), why)
                    value = value.rstrip("/")
                settings[key] = value
            credentials, file_secrets = self.credentials(node, raw, ttype)
            safety_raw = raw.get("safety") or {}
            out[name] = TargetConfig(
                name=name,
                type=ttype.name,
                settings=MappingProxyType(settings),
                credentials=MappingProxyType(credentials),
                file_secrets=MappingProxyType(file_secrets),
                prune=bool(raw.get("prune", False)),
                prune_prefix=raw.get("prune_prefix"),
                safety=Safety(
                    max_delete_share=float(safety_raw.get("max_delete_share", 0.30)),
                    min_existing=int(safety_raw.get("min_existing", 10)),
                    guards=Guard().merged(guard_settings(safety_raw.get("guards"))),
                ),
            )
        return out

    def credentials(
        self, node: NodePath, raw: Mapping[str, Any], ttype: TargetType
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The credential references of a target (field → variable, or ``file:`` and the
        absolute path), and the
        values of its ``${file:PATH}`` ones, read now; a file that cannot be read is reported
        at its field, by path, never by content."""
        refs: dict[str, str] = {}
        values: dict[str, str] = {}
        for field in ttype.credentials:
            if field not in raw:
                continue
            shown = secret_file(raw[field])
            if shown is None:
                refs[field] = env_var(raw[field])
                continue
            path = self.doc.path.parent.resolve() / shown  # or absolute
            refs[field] = FILE_PREFIX + str(path)
            try:
                values[field] = read_secret_file(path, shown)
            except SecretError as exc:
                self.report((*node, field), str(exc))
        return refs, values

    def target_type(self, node: NodePath, raw: Mapping[str, Any]) -> TargetType | None:
        """The type of the target at ``node``, from its provider's declaration; a type named
        by dotted path is imported here and the target checked against its declared settings
        (None, reported at the field, when it cannot be)."""
        name = str(raw["type"])
        try:
            ttype = target_type(name)
            problems = [] if name in TARGET_KINDS else self._check_branch(node, raw, name)
        except ConfigError as exc:
            self.report((*node, "type"), exc.problems[0].message)
            return None
        self.problems.extend(problems)
        return None if problems else ttype

    def _check_branch(self, node: NodePath, raw: Mapping[str, Any], name: str) -> list[Problem]:
        found = validate_branch(branch(name), raw, node, self.doc.locations, self.file)
        return [problem for _, problem in found]
