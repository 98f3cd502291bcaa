"""The API's service layer: queries, visibility rules and writes behind the routes, one module per
resource. Services raise typed errors (profilekit.errors); the app maps them to HTTP statuses."""


def retry_lost_race(session, write):
    """`write(session)` again, once, after a unique constraint refused it: a concurrent request stored the
    same key between our check and our insert. The second try sees that row, so its own check answers
    (409 for a taken external id, the first job for a repeated idempotency key)."""
    from sqlalchemy.exc import IntegrityError

    try:
        return write(session)
    except IntegrityError:
        session.rollback()
        return write(session)
