"""app.auth: the pure parts (key issuing and hashing, principals); authenticate needs a DB."""

import hashlib

import pytest

from app.auth import KEY_PREFIX, Principal, _key_id_of, hash_key, issue_key
from app.errors import Forbidden, NotFound
from app.ids import looks_like

OPERATOR = Principal("operator", None, None)
TENANT = Principal("tenant", "ten_A", "key_1")


def test_issue_key_format() -> None:
    key_id, token, _ = issue_key()
    assert looks_like("key", key_id)
    assert KEY_PREFIX == "hrk_"
    assert token.startswith(f"hrk_{key_id.removeprefix('key_')}_")
    secret_part = token.removeprefix(f"hrk_{key_id.removeprefix('key_')}_")
    assert len(secret_part) >= 43  # 32 random bytes, base64url


def test_issued_token_names_its_key_id() -> None:
    key_id, token, _ = issue_key()
    assert _key_id_of(token) == key_id


def test_issue_key_hash_is_sha256_of_the_token() -> None:
    _, token, stored_hash = issue_key()
    assert stored_hash == hashlib.sha256(token.encode()).digest()
    assert hash_key(token) == stored_hash
    assert len(stored_hash) == 32


def test_issued_keys_are_distinct() -> None:
    issued = [issue_key() for _ in range(50)]
    assert len({key_id for key_id, _, _ in issued}) == 50
    assert len({token for _, token, _ in issued}) == 50
    assert len({stored for _, _, stored in issued}) == 50


def test_hash_key_distinguishes_tokens() -> None:
    assert hash_key("hrk_a") != hash_key("hrk_b")
    assert hash_key("hrk_a") == hashlib.sha256(b"hrk_a").digest()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hrk_",
        "hrk_short_secret",
        "Bearer hrk_01J0000000000000000000000Z_x",
        "key_01J0000000000000000000000Z",
        "sk_01J0000000000000000000000Z_secret",
        "hrk_01J000000000000000000000I0_secret",
    ],
)
def test_tokens_without_a_key_id(token: str) -> None:
    assert _key_id_of(token) is None


def test_operator_principal() -> None:
    assert OPERATOR.is_operator
    OPERATOR.require_operator()
    assert OPERATOR.can_see("ten_A")
    assert OPERATOR.can_see("ten_B")
    assert OPERATOR.tenant_for("ten_B") == "ten_B"
    assert OPERATOR.tenant_for(None) is None


def test_operator_scoped_api_key_is_an_operator() -> None:
    Principal("operator", None, "key_2").require_operator()


def test_tenant_principal_cannot_act_as_operator() -> None:
    assert not TENANT.is_operator
    with pytest.raises(Forbidden) as caught:
        TENANT.require_operator()
    assert caught.value.status == 403


def test_tenant_principal_sees_only_its_tenant() -> None:
    assert TENANT.can_see("ten_A")
    assert not TENANT.can_see("ten_B")


@pytest.mark.parametrize("requested", [None, "ten_A"])
def test_tenant_principal_is_bound_to_its_own_tenant(requested: str | None) -> None:
    assert TENANT.tenant_for(requested) == "ten_A"


def test_tenant_principal_naming_another_tenant_gets_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        TENANT.tenant_for("ten_B")
    assert caught.value.status == 404
    assert "ten_B" in caught.value.detail
    assert "ten_A" not in caught.value.detail
