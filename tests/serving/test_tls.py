"""With a certificate and key configured, the endpoint speaks HTTPS only (a locally generated
certificate for 127.0.0.1)."""

import datetime
import ipaddress

import httpx
import pytest

from tests.serving.conftest import feed_records, start_endpoint, unique_model_name, wait_until

pytestmark = pytest.mark.slow


def self_signed(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls_when_a_certificate_and_key_are_configured(mlflow_server, tmp_path):
    cert, key = self_signed(tmp_path)
    endpoint = start_endpoint(
        tmp_path / "serve",
        mlflow_server,
        unique_model_name("tls"),  # no such model: the endpoint runs, not ready
        {"INFERLOOP_SERVE_TLS_CERT": str(cert), "INFERLOOP_SERVE_TLS_KEY": str(key)},
        scheme="https",
    )
    try:
        live = httpx.get(f"{endpoint.url}/health/live", verify=str(cert), timeout=10)
        assert live.json() == {"live": True}

        def not_ready_because_missing():
            ready = httpx.get(f"{endpoint.url}/health/ready", verify=str(cert), timeout=10)
            return ready.status_code == 503 and "does not exist" in ready.json()["problem"]

        wait_until(not_ready_because_missing, 60, what="the missing model reported")
        no_model = endpoint.post({"dataframe_records": feed_records(1)})
        assert no_model.status_code == 503 and no_model.headers["Retry-After"]
        assert "No model is loaded yet" in no_model.json()["error"]
        refused = httpx.post(f"{endpoint.url}/invocations", json={}, verify=str(cert), timeout=10)
        assert refused.status_code == 401
        plain = endpoint.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/health/live", timeout=10)
    finally:
        endpoint.stop()
