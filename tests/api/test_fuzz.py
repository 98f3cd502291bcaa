"""Fuzz every operation of the served OpenAPI schema with schemathesis: no generated input, valid or
invalid for the schema, may get a 5xx. Bounded: a fixed number of examples per operation.

Besides schemathesis's own cases (positive and negative), operations that take a profile or job id
are also fuzzed with the id of a real trained profile and job, and uploads, training and predict get
bodies shaped like the real thing (rows, method and hyperparameter names, items naming the trained
profile) with arbitrary text in them, so generated input gets past the 404s and parsers it would
otherwise stop at. No operation of the schema is skipped; the dashboard's HTML routes are not in the
schema (test_dashboard_browser.py covers them)."""

from __future__ import annotations

import csv
import io
import json
import os

EXAMPLES = 30  # calls per operation
SEED = int(os.environ.get("PROFILEKIT_FUZZ_SEED", "5"))  # fixed for a repeatable run; vary it to explore


def shaped_bodies(profile: str) -> dict:
    """Operation label → strategy of (media type, body) shaped like real requests, arbitrary inside."""
    from hypothesis import strategies as st

    any_text = st.text(st.characters(exclude_categories=()), max_size=300)  # NUL, lone surrogates, …
    finite = st.floats(allow_nan=False, allow_infinity=False)  # JSON has no NaN
    scalar = st.none() | st.booleans() | st.integers() | finite | any_text
    json_value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) |
                              st.dictionaries(any_text, inner, max_size=3), max_leaves=6)

    def encoded(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")  # with a lone surrogate: invalid UTF-8, as clients send

    def uploads(author: bool):
        fields = {"text": any_text, "category": any_text} | ({"author": any_text} if author else {})
        rows = st.lists(st.fixed_dictionaries(fields), min_size=1, max_size=5)

        def as_csv(rs):
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rs[0]))
            writer.writeheader()
            writer.writerows(rs)
            return encoded(out.getvalue())

        return st.one_of(rows.map(lambda rs: ("application/x-ndjson",
                                              encoded("\n".join(json.dumps(r) for r in rs)))),
                         rows.map(lambda rs: ("text/csv", as_csv(rs))),
                         rows.map(lambda rs: ("application/json", rs)))

    ref = st.one_of(st.just(profile), st.just(profile), any_text)  # mostly the trained profile
    names = st.sampled_from(["epochs", "batch_size", "patience", "holdout_fraction", "seed", "k", "nu",
                             "tau", "mask", "head", "lr", "reduction_factor"]) | any_text
    train = st.fixed_dictionaries({
        "profile_ids": st.lists(ref, min_size=1, max_size=2),
        "method": st.sampled_from(["xpeft_hard", "xpeft-soft", "head_only", "single_adapter"]) | any_text,
        "hyperparameters": st.dictionaries(names, json_value, max_size=3),
        "train": st.dictionaries(names, json_value, max_size=3)})
    items = st.lists(st.fixed_dictionaries({"profile_id": ref | st.none(),
                                            "text": any_text.filter(bool)}), min_size=1, max_size=8)
    return {"POST /v1/profiles/{profile_id}/examples": uploads(author=False),
            "POST /v1/datasets": uploads(author=True),
            "POST /v1/jobs": train.map(lambda body: ("application/json", body)),
            "POST /v1/predict": items.map(lambda i: ("application/json", {"items": i}))}


def test_no_generated_input_gets_a_server_error(server):
    fuzz_every_operation(server, server.client, EXAMPLES)


def fuzz_every_operation(server, key: str, examples: int) -> None:
    """`examples` generated calls per operation of the served schema with `key`; fails listing every
    operation that answered a 5xx (tests/reliability/test_schemathesis.py runs it with an admin key)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup

    schemathesis.serializer.alias("application/x-ndjson", "text/plain")  # JSONL uploads go out as text
    profile, job = server.trained_profile("fuzz")
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # the whole /v1 API and the health routes are in the schema
    # deleting the trained profile early would turn every later call that names it into a 404
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    known = {"profile_id": profile, "job_id": job}
    shaped = shaped_bodies(profile)
    auth = {"Authorization": f"Bearer {key}"}
    failures = []
    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        real_ids = {n: known[n] for n in names if n in known}
        strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
        if names:
            strategies.append(operation.as_strategy(path_parameters=real_ids))
        if operation.label in shaped:
            def shaped_case(media_body, op=operation, ids=real_ids):
                media_type, body = media_body
                return op.as_strategy(path_parameters=ids or None, media_type=media_type, body=body)

            bodies = shaped.pop(operation.label).flatmap(shaped_case)
            strategies += [bodies, bodies]  # weighted double

        @fixed_seed(SEED)
        @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                  phases=[Phase.explicit, Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def call(case):
            case.call_and_validate(base_url=server.url, headers=auth, checks=[not_a_server_error], timeout=60)

        try:
            call()
        except (Exception, FailureGroup) as exc:  # collect every operation's failure, report them together
            failures.append(f"{operation.label}: {exc}")
    assert not shaped, f"operations no longer in the schema: {sorted(shaped)}"
    assert not failures, "\n\n".join(failures)
