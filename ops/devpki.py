"""A throwaway PKI for trying TLS locally, the tests and the benchmark: `python -m ops.devpki DIR`.

Writes a CA, a server certificate for localhost / 127.0.0.1, a client certificate it signed (for mutual TLS) and
a "rogue" client certificate from a second CA (to see a refusal). EC P-256 keys, valid for two days. Never use
these for a real deployment: the CA key is thrown away, so nothing else can be signed, and the files are not
protected.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Pki:
    ca: Path  # the CA both server and agent trust
    server_cert: Path
    server_key: Path
    client_cert: Path  # signed by `ca`
    client_key: Path
    rogue_cert: Path  # a client certificate from another CA
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *,
          ca: bool, usage: Sequence[x509.ObjectIdentifier] = ()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        assert key is not None
        # unencrypted private keys: readable by their owner only, from the moment the file exists
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return path


def make_pki(where: Path) -> Pki:
    """A CA, a server certificate for localhost / 127.0.0.1, a client certificate, and a rogue client certificate
    signed by a second CA (EC P-256: quick to make)."""
    where.mkdir(parents=True, exist_ok=True)
    ca_key, rogue_ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("dd0c test CA", ca_key, "dd0c test CA", ca_key, ca=True)
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("server", "client", "rogue")}
    server = _cert("localhost", keys["server"], "dd0c test CA", ca_key, ca=False,
                   usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    client = _cert("agent-vpc-1", keys["client"], "dd0c test CA", ca_key, ca=False,
                   usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    rogue = _cert("agent-rogue", keys["rogue"], "rogue CA", rogue_ca_key, ca=False,
                  usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    return Pki(
        ca=_write(where / "ca.pem", ca),
        server_cert=_write(where / "server.pem", server), server_key=_write(where / "server.key", None, keys["server"]),
        client_cert=_write(where / "client.pem", client), client_key=_write(where / "client.key", None, keys["client"]),
        rogue_cert=_write(where / "rogue.pem", rogue), rogue_key=_write(where / "rogue.key", None, keys["rogue"]),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.devpki",
        description="Write a throwaway CA, a localhost server certificate, a client certificate it signed and a "
                    "rogue one from another CA into DIR, to try the agent's TLS and mutual TLS locally. Never use "
                    "them for a real deployment.",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="folder to write them to (created if needed)")
    args = parser.parse_args(argv)  # --help and a missing DIR end here, before anything is written
    pki = make_pki(args.dir)
    for name, path in vars(pki).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
