"""Fixtures the integration tests share."""

from __future__ import annotations

import uuid

import pytest

from payments.store import PaymentStore
from tests.conftest import aws_client


@pytest.fixture
def own_store(aws) -> PaymentStore:
    """A payments table for this test alone: reconciliation reads every pending payment of a method, and other
    tests leave pending payments about objects the simulator never made."""
    from local.resources import _create_table
    from local.template import Resolver, load_template

    template = load_template()
    props = Resolver(template, region="us-east-1").resolve(template["Resources"]["PaymentsTable"]["Properties"])
    name = f"reconcile-{uuid.uuid4().hex[:8]}"
    _create_table(aws_client("dynamodb"), name, props)
    return PaymentStore(table_name=name)
