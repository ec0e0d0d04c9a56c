"""An in-process API server on a free loopback port, and HTTP clients for it."""

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from app.api.main import create_app
from app.settings import Settings
from tests.support import OPERATOR_KEY, free_port, serving

__all__ = ["free_port"]

TenantFactory = Callable[..., Awaitable[dict[str, object]]]
KeyFactory = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="session")
async def api_url(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
async def operator(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def anonymous(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture
def make_tenant(operator: httpx.AsyncClient) -> TenantFactory:
    async def make(name: str = "Acme") -> dict[str, object]:
        response = await operator.post("/v1/tenants", json={"name": name})
        assert response.status_code == 201, response.text
        tenant: dict[str, object] = response.json()
        return tenant

    return make


@pytest.fixture
async def tenant_client(api_url: str, operator: httpx.AsyncClient) -> AsyncIterator[KeyFactory]:
    """Makes a client authenticated with a new key of the given tenant."""
    clients: list[httpx.AsyncClient] = []

    async def make(tenant_id: str) -> httpx.AsyncClient:
        response = await operator.post(f"/v1/tenants/{tenant_id}/api-keys", json={"name": "t"})
        assert response.status_code == 201, response.text
        headers = {"Authorization": f"Bearer {response.json()['key']}"}
        client = httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
