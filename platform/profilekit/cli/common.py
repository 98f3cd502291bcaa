from __future__ import annotations

import sys

from profilekit.errors import NotFound


def progress_bar(total: int, desc: str, unit: str = "step"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def jobs_table(jobs: list[dict]) -> str:
    """Jobs as the API answers them (JobOut), local or remote."""
    rows = [[j["id"], j["kind"], j["state"], len(j["profile_ids"]), j["params"].get("method", ""),
             f"{j['progress'].get('step', 0)}/{j['progress'].get('total_steps', 0)}", j["attempts"],
             str(j["created_at"])[:19].replace("T", " "), j["error"] or ""] for j in jobs]
    return table(rows, ["job", "kind", "state", "profiles", "method", "steps", "attempts", "created", "error"])


def profiles_table(profiles: list[dict]) -> str:
    """Profiles as the API answers them (ProfileOut), local or remote."""
    def artifact(p, key):
        a = p["artifact"]
        if a is None:
            return "-"
        return a["method"] if key == "method" else a["stored_bytes"] if key == "bytes" else \
            f"{a['metrics'].get('accuracy', float('nan')):.3f}"

    rows = [[p["id"], p["external_id"] or "", p["tenant"], p["status"], p["examples"], artifact(p, "method"),
             artifact(p, "accuracy"), artifact(p, "bytes")] for p in profiles]
    return table(rows, ["profile", "external id", "tenant", "status", "examples", "method", "accuracy",
                        "stored bytes"])


def artifacts_table(versions: list[dict]) -> str:
    """A profile's artifact versions as the API answers them (ArtifactVersion), newest first."""
    rows = [[a["id"], "*" if a["current"] else "", a["job_id"] or "-", a["method"],
             f"{a['metrics'].get('accuracy', float('nan')):.3f}", a["stored_bytes"],
             str(a["created_at"])[:19].replace("T", " ")] for a in versions]
    return table(rows, ["artifact", "current", "job", "method", "accuracy", "stored bytes", "created"])


def predictions_text(texts: list[str], predictions: list[dict]) -> str:
    """One line per text: label, the top three scores, the text."""
    lines = []
    for text, prediction in zip(texts, predictions, strict=True):
        top = sorted(prediction["scores"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"{prediction['label']}\t" + " ".join(f"{k}={v:.2f}" for k, v in top) + f"\t{text}")
    return "\n".join(lines)


def train_settings(args) -> dict:
    """The training settings of `onboard`'s flags, checked before anything is uploaded or stored (a
    pydantic ValidationError naming the field: exit status 2)."""
    from profilekit.jobs import TrainConfig

    train = {"min_rows": max(3, args.min_rows)} | ({"epochs": args.epochs} if args.epochs is not None else {})
    TrainConfig(**train)
    return train


def keys_table(keys: list[dict]) -> str:
    """Keys as the API answers them (KeyOut), local or remote."""
    rows = [[k["id"], k["role"], "(every tenant)" if k["role"] == "admin" else k["tenant"], k["name"] or "",
             f"{k['rows_per_second']:g}" if k["rows_per_second"] else "default",
             str(k["created_at"])[:19].replace("T", " "),
             str(k["revoked_at"])[:19].replace("T", " ") if k["revoked_at"] else ""] for k in keys]
    return table(rows, ["id", "role", "tenant", "name", "rows/s", "created", "revoked"])


def pools_table(pools: list[dict]) -> str:
    """Pools as the API answers them (PoolOut), local or remote."""
    rows = [[p["pool_hash"][:16], p["name"] or "", p["source"], p["num_adapters"], p["tenant"] or "",
             ", ".join(p["default_for"]), len(p["built_from"] or []), str(p["created_at"])[:16].replace("T", " ")]
            for p in pools]
    return table(rows, ["pool", "name", "source", "N", "tenant", "default for", "built from", "created"])


def pool_named(prefix: str, hashes: list[str]) -> str | None:
    """The one pool hash starting with `prefix` (a prefix, never a pattern); 'random' → None, the random pool."""
    if prefix == "random":
        return None
    matches = [h for h in hashes if h.startswith(prefix)]
    if len(matches) != 1:
        raise NotFound(f"{len(matches)} pools start with {prefix!r}; give more of the hash")
    return matches[0]


def print_new_key(key: str, role: str, tenant: str | None) -> None:
    """A new key alone on stdout (for scripts); whose it is on stderr."""
    print(key)
    whose = "every tenant" if role == "admin" else f"tenant {tenant or 'default'!r}"
    print(f"(a {role} key of {whose}; it is shown only this once)", file=sys.stderr)
