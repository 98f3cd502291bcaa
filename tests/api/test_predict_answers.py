"""/v1/predict answers what the engine answers: profiles of every method, mixed in one request and served
from the batcher (the first request loads their artifacts, the second finds them in the cache), equal
to the stored artifacts loaded by a separate engine and predicted one row at a time."""

from __future__ import annotations

import math

from profilekit.methods import method_names
from profilekit.store import repo
from profilekit.store.models import Artifact, Profile

TEXTS = ["the senate passed the budget", "a late goal won the match", "markets fell on the news"]


def test_served_predictions_equal_the_engine_called_directly(server):
    small = {"xpeft_hard": {"k": 4}}  # the test pool has N=12 adapters per layer, below the default k
    profiles = {method: server.trained_profile(f"answers-{method}", method, small.get(method))[0]
                for method in method_names()}
    items = [{"profile_id": pid, "text": text} for pid in profiles.values() for text in TEXTS] + [{"text": TEXTS[0]}]
    with server.http(server.client) as http:
        first = http.post("/v1/predict", json={"items": items})
        again = http.post("/v1/predict", json={"items": items[::-1]})
    assert first.status_code == again.status_code == 200, first.text
    served = first.json()["results"]
    assert again.json()["results"][::-1] == served  # cached states answer as freshly loaded ones

    engines = server.worker_cache  # a separate engine (the worker's), its own copies of backbone and pools
    with server.runtime.sessions() as session:
        for item, result in zip(items[:-1], served, strict=False):
            profile = session.get(Profile, item["profile_id"])
            artifact = session.get(Artifact, profile.current_artifact_id)
            pools = [repo.get_pool(session, pool_hash=artifact.pool_hash)] if artifact.pool_hash else []
            state = engines.serving_engine(pools).load(artifact.payload)
            [expected] = engines.engine().predict([item["text"]], [state])
            assert result["artifact_version"] == artifact.id
            assert result["label"] == expected.label, (artifact.method, item["text"])
            assert result["scores"].keys() == expected.scores.keys()
            for label, score in expected.scores.items():
                assert math.isclose(result["scores"][label], score, rel_tol=1e-4, abs_tol=1e-5), artifact.method
    assert served[-1] == {"profile_id": None, "label": None, "scores": {}, "artifact_version": None}
