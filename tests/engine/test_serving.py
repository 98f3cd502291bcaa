"""The serving floor's one loader: all or nothing, tenant-scoped, and hot profiles never read the
artifacts table (the batched path /v1/predict, the command line and the scale benchmark share)."""

import pytest
from sqlalchemy import event

from profilekit.engine import Engine
from profilekit.errors import NotFound, NotTrained
from profilekit.serving import ArtifactCache, EngineCache, load_states
from profilekit.settings import Settings
from profilekit.store import make_engine, make_session_factory, repo
from profilekit.store.migrate import upgrade
from profilekit.store.models import Artifact


@pytest.fixture
def stored(tiny_backbone, tiny_pool, tmp_path):
    """Three trained profiles of tenant acme, one untrained, one of tenant globex, in a real store."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    upgrade(url)
    db = make_engine(url)
    sessions = make_session_factory(db)
    engine = Engine(tiny_backbone, tiny_pool)
    ids = {}
    with sessions() as session:
        repo.ensure_pool(session, pool=tiny_pool)
        for i, (name, tenant) in enumerate([("a", "acme"), ("b", "acme"), ("c", "acme"), ("g", "globex")]):
            profile = repo.create_profile(session, tenant=tenant, external_id=name)
            state = engine.new_state("xpeft_hard", ["politics", "sports"], seed=i, k=3)
            artifact = engine.save(state)
            row = Artifact(profile_id=profile.id, method=artifact.method, pool_hash=tiny_pool.pool_hash,
                           payload=artifact.to_bytes(), payload_bytes=artifact.payload_bytes,
                           stored_bytes=artifact.stored_bytes, hyperparameters={}, metrics={})
            session.add(row)
            session.flush()
            profile.current_artifact_id = row.id
            ids[name] = profile.id
        ids["new"] = repo.create_profile(session, tenant="acme", external_id="new").id
        session.commit()
    engines = EngineCache(Settings(data_dir=tmp_path), engine=engine)
    yield ids, sessions, engines, db
    db.dispose()


def test_hot_profiles_never_read_the_artifacts_table(stored):
    ids, sessions, engines, db = stored
    cache = ArtifactCache()
    statements = []
    event.listen(db, "before_cursor_execute", lambda *args: statements.append(args[2]))
    wanted = [ids["a"], ids["b"], ids["c"]]
    with sessions() as session:
        first = load_states(session, profile_ids=wanted, engines=engines, cache=cache, tenant="acme")
    cold = [s for s in statements if "FROM artifacts" in s]
    assert len(cold) == 1 and cache.misses == 3  # one query for the three payloads
    statements.clear()
    with sessions() as session:
        again = load_states(session, profile_ids=wanted, engines=engines, cache=cache, tenant="acme")
    assert not [s for s in statements if "FROM artifacts" in s] and cache.hits == 3
    assert all(again[pid][0] is first[pid][0] for pid in wanted)
    predictions = engines.engine().predict(["a vote", "a goal", "x"], [first[pid][0] for pid in wanted])
    assert all(p.label in ("politics", "sports") for p in predictions)


def test_unknown_other_tenant_and_untrained_profiles_are_refused_whole(stored):
    ids, sessions, engines, _ = stored
    cache = ArtifactCache()
    with sessions() as session, pytest.raises(NotFound) as unknown:
        load_states(session, profile_ids=[ids["a"], "nobody", ids["g"]], engines=engines, cache=cache,
                    tenant="acme")
    assert unknown.value.ids == ["nobody", ids["g"]]  # another tenant's profile is as unknown as a missing one
    with sessions() as session, pytest.raises(NotTrained) as untrained:
        load_states(session, profile_ids=[ids["a"], ids["new"]], engines=engines, cache=cache, tenant="acme")
    assert untrained.value.profiles == [{"id": ids["new"], "state": "new"}]
    assert len(cache) == 0  # nothing was loaded for a refused request
    with sessions() as session:  # an operator (tenant None) sees every tenant
        assert set(load_states(session, profile_ids=[ids["g"]], engines=engines, cache=cache)) == {ids["g"]}
