"""C2PA-signed test images, made here with c2pa-python's Builder and a throwaway certificate chain.

The chain (a root CA and an ES256 signing certificate, valid for a day) is generated in memory for
the test session; no trust list holds it, so readers report "signer not on a trust list".
"""

from __future__ import annotations

import datetime
import io
from functools import lru_cache

ACTIONS = {"label": "c2pa.actions", "data": {"actions": [
    {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}


@lru_cache(maxsize=1)
def throwaway_chain() -> tuple[bytes, bytes]:
    """(certificate chain PEM: signer then root, signer's private key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Consentry Tests")])

    now = datetime.datetime.now(datetime.UTC)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Throwaway Root")).issuer_name(name("Throwaway Root"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("Throwaway Signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (leaf.public_bytes(pem) + ca.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def signed(image: bytes, entries: dict[str, str] | None, mime: str = "image/jpeg",
           label: str = "cawg.training-mining") -> bytes:
    """``image`` with a C2PA manifest; ``entries`` {entry: use} become a training-mining assertion (None: none)."""
    import c2pa

    chain, key = throwaway_chain()
    assertions = [ACTIONS]
    if entries is not None:
        assertions.append({"label": label, "data": {"entries": {k: {"use": v} for k, v in entries.items()}}})
    manifest = {"claim_generator_info": [{"name": "consentry-tests", "version": "1"}], "title": "test image",
                "assertions": assertions}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=key, ta_url=None))
    out = io.BytesIO()
    c2pa.Builder(manifest).sign(signer, mime, io.BytesIO(image), out)
    return out.getvalue()


def tampered(signed_image: bytes) -> bytes:
    """The signed image with one byte of its manifest's training-mining assertion changed (hash mismatch)."""
    i = signed_image.find(b"notAllowed")
    assert i > 0, "no notAllowed in the manifest"
    data = bytearray(signed_image)
    data[i] ^= 0x01
    return bytes(data)
