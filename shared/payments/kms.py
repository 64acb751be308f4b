"""The webhook endpoints' signing secrets, encrypted with the service's KMS key (docs/webhooks-outbound.md).

The only code that calls KMS. A secret is encrypted with an encryption context naming its endpoint, so a
ciphertext copied onto another endpoint's item does not decrypt. The plaintext is never stored, never logged:
the registering route shows it once, the delivery function decrypts it to sign.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from payments import snapstart


def kms_client() -> Any:
    import boto3

    return snapstart.closes_connections(boto3.client("kms"))  # docs/snapstart.md


class SecretUnreadable(Exception):
    """KMS refused to decrypt a stored secret (another key, another context, a damaged ciphertext)."""


class SecretBox:
    """Encrypts and decrypts short secrets with one KMS key; its client is created at first use."""

    def __init__(self, key_id: str | None, client: Any = None) -> None:
        self.key_id = key_id
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = kms_client()
        return self._client

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        """The ciphertext (base64 text) of `plaintext`, bound to `context`."""
        if not self.key_id:
            raise RuntimeError("WEBHOOK_KEY_ID is not set: no KMS key to encrypt webhook secrets with")
        answer = self.client.encrypt(
            KeyId=self.key_id, Plaintext=plaintext.encode("utf-8"), EncryptionContext=dict(context)
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def open(self, ciphertext: str, context: Mapping[str, str]) -> str:
        """The plaintext of a ciphertext `seal` made with the same context; SecretUnreadable if KMS refuses it."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=dict(context))
        except (ClientError, ValueError) as exc:
            raise SecretUnreadable(type(exc).__name__) from None  # never the ciphertext or the key in a message
        return bytes(answer["Plaintext"]).decode("utf-8")
