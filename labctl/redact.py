"""Redaction of secrets and prompt content, applied before anything is logged, shown, served or exported.

By default: credential headers (Authorization, cookies, API keys and anything named like a token),
prompt text (`prompt`), tool parameters (`tool_parameters`), plus any attribute a contract marks
`sensitive: true` and whatever the proxy config adds under `redact: {headers: [...], attributes: [...]}`.
Redaction never mutates its input: a record that needs it is copied, one that does not is returned as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from labctl.errors import LabError

REDACTED = "[REDACTED]"
DEFAULT_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token"}
)
_SECRET_HINTS = ("auth", "token", "key", "secret", "cookie", "password", "credential", "signature")
DEFAULT_ATTRIBUTES = frozenset({"prompt", "tool_parameters"})
# A bearer/basic credential inside free text (an error message, a log body) is scrubbed too.
_CREDENTIAL_IN_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")


class Redactor:
    def __init__(self, headers: Iterable[str] = (), attributes: Iterable[str] = ()) -> None:
        self.headers = DEFAULT_HEADERS | {h.lower() for h in headers}
        self.attributes = DEFAULT_ATTRIBUTES | frozenset(attributes)

    @classmethod
    def from_config(cls, section: Any, extra_attributes: Iterable[str] = ()) -> Redactor:
        """`redact: {headers: [...], attributes: [...]}` from the proxy config."""
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise LabError(
                "proxy config: 'redact' must be a mapping with 'headers' and/or 'attributes' lists",
                "e.g. redact: {headers: [x-tenant-key], attributes: [user.email]}",
            )
        unknown = set(section) - {"headers", "attributes"}
        if unknown:
            raise LabError(
                f"proxy config: redact: unknown key(s) {', '.join(sorted(map(str, unknown)))}",
                "redact takes 'headers' and 'attributes'",
            )
        lists = []
        for key in ("headers", "attributes"):
            value = section.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise LabError(
                    f"proxy config: redact.{key} must be a list of names",
                    f"e.g. redact: {{{key}: [name1, name2]}}",
                )
            lists.append(value)
        return cls(lists[0], [*lists[1], *extra_attributes])

    def with_attributes(self, attributes: Iterable[str]) -> Redactor:
        out = Redactor()
        out.headers = self.headers
        out.attributes = self.attributes | frozenset(attributes)
        return out

    # --- pieces ----------------------------------------------------------------------------------

    def header_map(self, headers: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in headers.items():
            key = str(k).lower()
            if key in self.headers or any(h in key for h in _SECRET_HINTS):
                out[key] = REDACTED
            else:
                out[key] = self.text(str(v))
        return out

    def text(self, value: str) -> str:
        if "earer" in value or "asic" in value:
            return _CREDENTIAL_IN_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return value

    def attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The same dict when nothing is sensitive (the common case: no copy), else a redacted copy."""
        if self.attributes.isdisjoint(attrs):
            return attrs
        return {k: (REDACTED if k in self.attributes else v) for k, v in attrs.items()}

    def record(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A payload record (see labctl.contract.Evaluation.records) safe to log, show and export."""
        attrs = rec.get("attributes")
        resource = rec.get("resource")
        body = rec.get("body")
        new_attrs = self.attrs(attrs) if isinstance(attrs, dict) else attrs
        new_res = self.attrs(resource) if isinstance(resource, dict) else resource
        new_body = self._body(body, rec)
        viol = rec.get("violations")
        new_viol = self._violations(viol) if viol else viol
        if new_attrs is attrs and new_res is resource and new_body is body and new_viol is viol:
            return rec
        out = dict(rec)
        out["violations"] = new_viol
        out["attributes"], out["resource"], out["body"] = new_attrs, new_res, new_body
        if "body" not in rec:
            del out["body"]
        return out

    def _violations(self, viol: list[dict[str, str]]) -> list[dict[str, str]]:
        """A violation on a redacted attribute must not quote its value in the message."""
        changed = False
        out = []
        for v in viol:
            path = v.get("path", "")
            key = (
                path[path.rfind("attributes[") + 11 : -1]
                if path.endswith("]") and "attributes[" in path
                else None
            )
            if key is not None and key in self.attributes:
                v = {**v, "message": f"attribute '{key}' breaks rule {v.get('rule')} (value redacted)"}
                changed = True
            out.append(v)
        return out if changed else viol

    def _body(self, body: Any, rec: dict[str, Any]) -> Any:
        if isinstance(body, str):
            # A user_prompt event's body could carry the prompt itself in some SDK versions.
            attrs = rec.get("attributes") or {}
            for key in self.attributes:
                secret = attrs.get(key)
                if isinstance(secret, str) and len(secret) >= 4 and secret in body:
                    body = body.replace(secret, REDACTED)
            return self.text(body)
        if isinstance(body, dict):
            return self.attrs(body)
        return body
