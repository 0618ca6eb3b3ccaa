"""The REST client over TLS, as a kubeconfig describes it: the server verified against the
cluster's CA, the client authenticated by its certificate — against an aiohttp HTTPS server
on loopback that demands a client certificate.  Certificates come from the openssl command."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from pybernetes.client.errors import ConnectionFailed
from pybernetes.client.kubeconfig import Config
from pybernetes.client.rest import RestClient

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl command is missing")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name}", cwd=d)


def _signed(d: Path, ca: str, name: str, cn: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", cn, cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _signed(d, "ca", "server", "/CN=apiserver", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _signed(d, "ca", "admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture
async def https_server(pki: Path) -> AsyncIterator[str]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def whoami(request: web.Request) -> web.Response:
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (cert or {}).get("subject", ()))
        return web.json_response({"user": subject.get("commonName"), "group": subject.get("organizationName")})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_client_certificate_and_cluster_ca(pki: Path, https_server: str) -> None:
    config = Config(servers=[https_server], ca_data=(pki / "ca.crt").read_bytes(),
                    cert_data=(pki / "admin.crt").read_bytes(), key_data=(pki / "admin.key").read_bytes())
    async with RestClient(config, max_retries=0) as client:
        _, body = await client.send("GET", "/whoami")
    assert body == {"user": "admin", "group": "system:masters"}


async def test_server_signed_by_another_ca_is_refused(pki: Path, https_server: str) -> None:
    config = Config(servers=[https_server], ca_data=(pki / "other-ca.crt").read_bytes(),
                    cert_data=(pki / "admin.crt").read_bytes(), key_data=(pki / "admin.key").read_bytes())
    async with RestClient(config, max_retries=0) as client:
        with pytest.raises(ConnectionFailed, match="certificate verify failed"):
            await client.send("GET", "/whoami")


async def test_insecure_skip_tls_verify_still_presents_the_certificate(pki: Path, https_server: str) -> None:
    config = Config(servers=[https_server], insecure_skip_tls_verify=True,
                    cert_data=(pki / "admin.crt").read_bytes(), key_data=(pki / "admin.key").read_bytes())
    async with RestClient(config, max_retries=0) as client:
        _, body = await client.send("GET", "/whoami")
    assert body["user"] == "admin"


async def test_a_server_demanding_a_client_certificate_refuses_none(pki: Path, https_server: str) -> None:
    config = Config(servers=[https_server], ca_data=(pki / "ca.crt").read_bytes())
    async with RestClient(config, max_retries=0) as client:
        with pytest.raises(ConnectionFailed):
            await client.send("GET", "/whoami")
