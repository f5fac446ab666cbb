"""The library the page opens on: every catalogued file newest first (date taken, else file
time), paged by keyset cursor, with counts by kind and the folders and clusters to filter by
(`lib/search/browse.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from media_assets.api.body import CheckedRoute
from media_assets.api.schemas import COMMON_ERRORS, Facets, LibraryPage
from media_assets.api.state import State

router = APIRouter(route_class=CheckedRoute, tags=["library"], responses=COMMON_ERRORS)
Kind = Literal["image", "video", "audio", "json", "text", "other", "unknown"]


async def state(request: Request) -> State:
    return request.app.state.media


def browse_filters(kind: Kind | None = None,
                   after: datetime | None = Query(None, description="taken on or after "
                                                  "(a date or a date and time)"),
                   before: datetime | None = Query(None, description="taken before"),
                   under: str | None = Query(None, max_length=4096,
                                             description="a folder: files below it"),
                   cluster: int | None = Query(None, ge=1, le=2**31 - 1)):
    from media_assets.lib.search.browse import BrowseFilters

    if after is not None and before is not None:
        try:
            empty = after >= before
        except TypeError:
            raise HTTPException(422, "after and before: give both a time zone, or neither"
                                ) from None
        if empty:
            raise HTTPException(422, f"after ({after.date()}) is not earlier than before "
                                     f"({before.date()})")
    return BrowseFilters(kind, after, before, under or None, cluster)


def picture_of(item: dict) -> str | None:
    if item["status"] != "ok" or not item["on_disk"]:
        return None
    return f"/files/{item['key']}/thumbnail" if item["kind"] in ("image", "video") else None


@router.get("/library", response_model=LibraryPage)
async def library(st: State = Depends(state), filters=Depends(browse_filters),
                  cursor: str | None = Query(None, max_length=200,
                                             description="next_cursor of the page before"),
                  limit: int = Query(60, ge=1, le=200)) -> dict:
    """One page of the timeline, newest first; `next_cursor` fetches the next (null at the
    end). Keyset paging: every page costs the same, however deep."""
    from media_assets.lib.search.browse import CursorError, timeline

    try:
        page = await run_in_threadpool(timeline, st.engine, filters, cursor, limit)
    except CursorError as exc:
        raise HTTPException(422, str(exc)) from None
    for item in page["items"]:
        item["thumbnail"] = picture_of(item)
    return page


@router.get("/library/facets", response_model=Facets)
async def library_facets(st: State = Depends(state), filters=Depends(browse_filters)) -> dict:
    """Counts by kind under the other filters, the total, the folders and the clusters to
    filter by, and the first and last dates."""
    from media_assets.lib.search.browse import facets

    return await run_in_threadpool(facets, st.engine, filters)
