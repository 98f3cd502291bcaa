"""Every request body is bounded while it streams in: uploads by `max_upload_bytes`, every other body
(JSON) by the much smaller `max_json_bytes`. Over the limit → 413, before the body is parsed or kept."""

from __future__ import annotations

import re

from fastapi import HTTPException

UPLOAD_PATHS = re.compile(r"/v1/(datasets|profiles/[^/]+/examples)/?")


class BodyLimit:
    """ASGI middleware: a declared Content-Length over the limit is refused at the first read; a body
    without one (chunked) is counted as it arrives. The 413 is raised from `receive`, so the app's
    exception handling answers it like any other HTTPException."""

    def __init__(self, app, *, json_bytes: int, upload_bytes: int):
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = UPLOAD_PATHS.fullmatch(scope["path"]) is not None
        limit = self.upload_bytes if upload else self.json_bytes
        what = "upload" if upload else "request body"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = 0

        async def limited_receive():
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise HTTPException(413, f"{what} of {int(declared)} bytes exceeds the limit of {limit} bytes")
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"{what} exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
