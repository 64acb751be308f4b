"""Idempotency at the HTTP edge, written once for every route that takes an `Idempotency-Key` (docs/api.md#idempotency).

Powertools' idempotency record, keyed `<route>#<md5 of customer id and key>` in the idempotency table, wraps the
use case: the same key and body replays the stored answer, the same key with another body is 422, a request
still running is 409 with Retry-After. The key prefix is fixed per route, so a deployment and the local stack
compute the same keys (Powertools' default prefix names the Lambda function and the module).

Imported only by the functions that write (make_payment, admin): the read paths never load Powertools'
idempotency utility.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from payments.errors import InvalidInput, RetryLater

# What the idempotency layer raises when DynamoDB is throttled or down: the edge answers those 503 (api.build).
PERSISTENCE_ERRORS: tuple[type[Exception], ...] = (IdempotencyPersistenceLayerError,)
RECORD_SECONDS = 24 * 3600  # how long a key's answer is replayed
Handler = TypeVar("Handler", bound=Callable[..., Any])


class KeyReused(InvalidInput):
    """422: the Idempotency-Key was used before with another request body."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "this Idempotency-Key was already used with a different request body")


class IdempotentRoute:
    """The idempotency record of one route. `validate_on` names the field of the request data whose digest tells
    the same request from another one under the same key (a keyed fingerprint, never card data)."""

    def __init__(self, name: str, validate_on: str, persistence: BasePersistenceLayer) -> None:
        self.name = name
        self.config = IdempotencyConfig(
            event_key_jmespath="[customer_id, key]",
            payload_validation_jmespath=validate_on,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=RECORD_SECONDS,
        )
        self.persistence = persistence  # the store's: PaymentStore.idempotency_records()

    def wrap(self, handler: Handler) -> Handler:
        """`handler(request=..., **kwargs)`, run at most once per (customer, key): `request` is the record's data."""
        wrapped: Handler = idempotent_function(
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=self.name,
        )(handler)
        return wrapped

    def call(self, app: APIGatewayHttpResolver, handler: Callable[..., Any], **kwargs: Any) -> Any:
        """Run a wrapped handler; a reused key or a request still running become the API's 422 and 409."""
        self.config.register_lambda_context(app.lambda_context)  # an in-progress record lapses with the Lambda
        try:
            return handler(**kwargs)
        except IdempotencyValidationError as exc:
            raise KeyReused() from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise RetryLater(
                "a request with this Idempotency-Key is still being processed; retry shortly", retry_after=1
            ) from exc
