"""`profilekit pools build|set-default` refuse what they cannot honour before anything is queued or changed:
a pool size the API would refuse too (a negative --largest was SQL's "no limit" on SQLite: every profile),
--epochs 0 (it was dropped for the default), and a pool prefix that is not a prefix (LIKE's _ and %)."""

from __future__ import annotations

import pytest

from profilekit.store import repo


def queued_jobs(server) -> list:
    with server.runtime.sessions() as session:
        return repo.list_jobs(session, state="queued")


@pytest.mark.parametrize("flags", [["--largest", "-1"], ["--largest", "0"], ["--largest", "1001"],
                                   ["--largest", "2", "--epochs", "0"]])
def test_pools_build_refuses_a_size_or_epochs_the_api_refuses(server, cli, capsys, flags):
    for name in ("a", "b", "c"):
        server.trained_profile(name)
    with pytest.raises(SystemExit) as refused:
        cli(["pools", "build", "--tenant", "acme", *flags])
    assert refused.value.code == 2 and flags[-2] in capsys.readouterr().err  # names the flag
    assert queued_jobs(server) == []


def test_pools_set_default_takes_a_prefix_of_a_hash_never_a_pattern(server, cli, capsys):
    server.trained_profile("a", "xpeft_hard", {"k": 2})  # registers the random pool it trained on
    with server.runtime.sessions() as session:
        [pool] = repo.list_pools(session)
    for pattern in ("_", "%", "%" + pool.pool_hash[-4:]):
        assert cli(["pools", "set-default", pattern, "--tenant", "acme"]) == 2
        assert "0 pools start with" in capsys.readouterr().err
    with server.runtime.sessions() as session:
        assert repo.pool_defaults(session) == {}
    assert cli(["pools", "set-default", pool.pool_hash[:6], "--tenant", "acme"]) == 0
    with server.runtime.sessions() as session:
        assert repo.pool_defaults(session) == {pool.pool_hash: ["acme"]}
