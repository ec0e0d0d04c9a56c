"""API keys: issuing, hashing, and turning a presented key into a principal.

Keys are 256-bit random tokens, so a single SHA-256 is a sufficient hash (no slow KDF is
needed against brute force); lookups go by the key id embedded in the token and the hash
is compared in constant time.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, NotFound, Unauthorized
from app.ids import looks_like, new_id
from app.models import ApiKey

Scope = Literal["operator", "tenant"]
KEY_PREFIX = "hrk_"


@dataclass(frozen=True)
class Principal:
    scope: Scope
    tenant_id: str | None
    key_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.scope == "operator"

    def require_operator(self) -> None:
        if not self.is_operator:
            raise Forbidden("this operation needs an operator key")

    def can_see(self, tenant_id: str) -> bool:
        return self.is_operator or self.tenant_id == tenant_id

    def tenant_for(self, requested: str | None) -> str | None:
        """The tenant a request acts on: a tenant key is bound to its own."""
        if self.is_operator:
            return requested
        if requested is not None and requested != self.tenant_id:
            raise NotFound(f"tenant {requested} not found")
        return self.tenant_id


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def issue_key() -> tuple[str, str, bytes]:
    """A new (key id, token shown once, stored hash)."""
    key_id = new_id("key")
    token = f"{KEY_PREFIX}{key_id.removeprefix('key_')}_{secrets.token_urlsafe(32)}"
    return key_id, token, hash_key(token)


def _key_id_of(token: str) -> str | None:
    if not token.startswith(KEY_PREFIX):
        return None
    body, _, _ = token.removeprefix(KEY_PREFIX).partition("_")
    key_id = f"key_{body}"
    return key_id if looks_like("key", key_id) else None


async def authenticate(
    session: AsyncSession, *, token: str | None, operator_key: str | None
) -> Principal:
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    if operator_key is not None and hmac.compare_digest(hash_key(token), hash_key(operator_key)):
        return Principal("operator", None, None)
    key_id = _key_id_of(token)
    stored = await session.get(ApiKey, key_id) if key_id else None
    if stored is None or not hmac.compare_digest(stored.key_hash, hash_key(token)):
        raise Unauthorized("the API key is not valid", invalid_token=True)
    scope: Scope = "operator" if stored.scope == "operator" else "tenant"
    return Principal(scope, stored.tenant_id, stored.id)
