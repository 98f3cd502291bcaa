"""The operators' dashboard: read-only, server-rendered HTML, admin only."""
