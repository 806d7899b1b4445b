"""Certificates and keys a local kube-apiserver needs: a CA, serving and client certificates, and the
service-account signing key pair that makes TokenRequest (`kubectl create token`) work.

Everything is generated fresh per control plane and lives only in its state directory.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Short-lived on purpose: a local control plane lives for a test session or a dev day.
_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ControlPlanePKI:
    """Paths of every PEM file the control-plane components and clients use."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    controller_manager_cert: Path
    controller_manager_key: Path
    service_account_key: Path
    service_account_pub: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in microseconds, unlike RSA, which keeps start-up fast.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool = False,
    alt_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """A CA's certificate, a server's (for `alt_names`: DNS names and IP addresses) or, without
    `alt_names`, a client's."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        if alt_names:
            names = [_general_name(name) for name in dict.fromkeys(alt_names)]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if alt_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def generate_pki(
    directory: Path, service_ip: str = "10.0.0.1", extra_server_ips: tuple[str, ...] = ()
) -> ControlPlanePKI:
    """Write a complete PKI for one local control plane into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ControlPlanePKI(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        controller_manager_cert=directory / "controller-manager.crt",
        controller_manager_key=directory / "controller-manager.key",
        service_account_key=directory / "sa.key",
        service_account_pub=directory / "sa.pub",
    )

    ca_key = _new_key()
    ca_name = _name("mcpreg-local-ca")
    ca_cert = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True)
    _write_key(paths.ca_key, ca_key)
    _write_cert(paths.ca_cert, ca_cert)

    serving_key = _new_key()
    serving = _issue(
        _name("kube-apiserver"),
        serving_key.public_key(),
        ca_name,
        ca_key,
        alt_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "127.0.0.1",
            service_ip,
            *extra_server_ips,
        ),
    )
    _write_key(paths.serving_key, serving_key)
    _write_cert(paths.serving_cert, serving)

    # Both clients are in system:masters: the admin is the developer or the test suite; the
    # controller manager runs every controller under its own identity (no per-controller accounts).
    for cert_path, key_path, common_name in (
        (paths.admin_cert, paths.admin_key, "mcpreg-admin"),
        (paths.controller_manager_cert, paths.controller_manager_key, "system:kube-controller-manager"),
    ):
        key = _new_key()
        cert = _issue(_name(common_name, "system:masters"), key.public_key(), ca_name, ca_key)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)

    sa_key = _new_key()
    _write_key(paths.service_account_key, sa_key)
    paths.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths


def _load_ca(pki: ControlPlanePKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki.ca_key} is not an EC key")
    return cert, key


def issue_certificate(
    pki: ControlPlanePKI,
    directory: Path,
    name: str,
    *,
    common_name: str,
    organization: str | None = None,
    alt_names: tuple[str, ...] = (),
) -> tuple[Path, Path]:
    """Issue one more certificate from the control plane's CA (a kubelet's, kube-proxy's, …): a
    server's for `alt_names` (DNS names and IP addresses), else a client's. Returns the paths of
    `<name>.crt` and `<name>.key` in `directory`."""
    ca_cert, ca_key = _load_ca(pki)
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    cert = _issue(
        _name(common_name, organization), key.public_key(), ca_cert.subject, ca_key, alt_names=alt_names
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path
