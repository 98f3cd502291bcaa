"""Schemathesis over the whole served OpenAPI schema with an admin key (which reaches every operation,
the admin-only pools included, and every tenant's rows): no generated input, valid or invalid for the
schema, may get a 5xx, on the embedded default and on PostgreSQL + Redis. The client key's run is
tests/api/test_fuzz.py. Fast form: 10 calls per operation; full form (PROFILEKIT_RELIABILITY_FULL=1): 100."""

from __future__ import annotations

import os

import pytest

from tests.api.test_fuzz import fuzz_every_operation

pytestmark = pytest.mark.reliability
EXAMPLES = 100 if os.environ.get("PROFILEKIT_RELIABILITY_FULL") else 10


def test_no_generated_input_gets_a_server_error_with_an_admin_key(server):
    fuzz_every_operation(server, server.admin, EXAMPLES)
