"""JSON bodies may carry NaN, Infinity and numbers too large for a float (1e400): Python's JSON reader takes
them as numbers. Each is the client's mistake: 422 naming the field, never a 500 from echoing it back, and
never stored (a key whose limit is Infinity would read back as null, the server's default)."""

from __future__ import annotations

import pytest

BODIES = [  # (path, body as sent, the field the answer names)
    ("/v1/predict", '{"items": [{"text": "a"}], "timeout_ms": NaN}', "timeout_ms"),
    ("/v1/predict", '{"items": NaN}', "items"),
    ("/v1/predict", '{"items": [{"text": "a", "profile_id": -Infinity}]}', "profile_id"),
    ("/v1/predict", '{"items": [{"text": "a"}], "timeout_ms": 1e400}', "timeout_ms"),
    ("/v1/pools", '{"largest": NaN}', "largest"),
    ("/v1/keys", '{"tenant": "acme", "rows_per_second": NaN}', "rows_per_second"),
    ("/v1/keys", '{"tenant": "acme", "rows_per_second": 1e400}', "rows_per_second"),
    ("/v1/keys", '{"tenant": "acme", "rows_per_second": "Infinity"}', "rows_per_second"),
    ("/v1/jobs", '{"profile_ids": ["p"], "hyperparameters": {"k": Infinity}}', "hyperparameters.k"),
]


@pytest.mark.parametrize(("path", "body", "field"), BODIES)
def test_a_number_json_cannot_carry_is_refused_naming_its_field(server, path, body, field):
    with server.http(server.admin) as admin:
        answer = admin.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert field in answer.text
        assert all(k["rows_per_second"] is None for k in admin.get("/v1/keys").json())  # nothing stored
