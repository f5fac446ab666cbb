"""The web page in a real browser (Debian's chromium, driven by Playwright), at a laptop's
1366×768 and a phone's 390×844, on the session's API catalogue (conftest.py `api_library`:
photos, one with EXIF date, camera and GPS, a failed file, a voice memo, a video, JSON and a
text note). Each screen is checked with axe-core (no serious or critical violation), and
screenshots are kept under test-artifacts/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from media_assets.lib.settings import Settings
from media_assets_tests.live_server import Server

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}


@pytest.fixture(scope="module")
def library(api_library):
    mp = pytest.MonkeyPatch()
    for k, v in api_library[2].items():
        mp.setenv(k, v)
    with Server(Settings.from_env()) as srv:
        yield srv, api_library[1]
    mp.undo()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.fail("the page test needs Debian's chromium: apt-get install chromium "
                    "(.ci/setup installs it when run as root)")
    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture(params=list(SIZES), scope="module")
def size(request):
    return request.param


@pytest.fixture
def page(browser, size):
    w, h = SIZES[size]
    ctx = browser.new_context(viewport={"width": w, "height": h}, has_touch=size == "phone",
                              is_mobile=size == "phone")
    pg = ctx.new_page()
    pg.set_default_timeout(60000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, errors  # no uncaught script error on any screen


def shot(page, name: str, size: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"page_{name}_{size}.png"))


def axe_clean(page, screen: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
           if v["impact"] in ("serious", "critical")]
    assert not bad, (screen, bad)


def tiles(page) -> list[str]:
    return page.eval_on_selector_all("#timeline a.tile", "els => els.map(e => e.dataset.key)")


def wait_library(page, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('#timeline a.tile').length >= {n}")


def facets(page, srv) -> dict:
    return page.request.get(srv.url + "/library/facets").json()


def test_the_library_is_the_landing_page(library, page, size):
    """Timeline newest first by date taken, counts by kind, filters as removable chips, a
    search box always there, at least 3 columns on a phone."""
    srv, _ = library
    f = facets(page, srv)
    page.goto(srv.url + "/")
    wait_library(page, f["total"])
    assert page.is_visible("#q") and page.get_attribute("#q", "aria-keyshortcuts") == "/"
    assert f"{f['total']} files" in page.inner_text("#status")
    kinds = page.inner_text("#kinds")
    assert f"Photos {f['kinds']['image']}" in kinds and f"Notes {f['kinds']['text']}" in kinds
    # Newest first: the photo taken in 2024 (EXIF) comes after the files of today.
    names = page.eval_on_selector_all("#timeline a.tile .tname", "e => e.map(x => x.textContent)")
    assert names[-1] == "red.jpg" and "July 2024" in page.inner_text("#timeline"), names
    assert page.locator("#timeline a.tile .badge.bad", has_text="failed").count() == 1
    columns = page.evaluate("() => new Set([...document.querySelectorAll('.tiles')[0]"
                            ".children].map(t => t.offsetLeft)).size")
    assert columns >= (3 if size == "phone" else 6), columns
    shot(page, "library", size)
    axe_clean(page, "library")

    page.click("button.kind:has-text('Photos')")
    page.wait_for_function("() => [...document.querySelectorAll('#timeline a.tile')]"
                           ".every(t => t.classList.contains('kind-image'))")
    assert parse_qs(urlparse(page.url).query)["kind"] == ["image"]
    chip = page.locator("#chips button", has_text="Kind: Photos")
    assert chip.is_visible()
    wait_library(page, f["kinds"]["image"])
    chip.click()
    wait_library(page, f["total"])
    assert "kind" not in page.url and page.locator("#chips button").count() == 0

    # Dates and folders from the URL; a chip says each is on.
    page.goto(srv.url + "/?after=2024-07-01&before=2024-08-01")
    page.wait_for_function("() => document.querySelectorAll('#timeline a.tile').length === 1")
    assert tiles(page) and page.inner_text("#timeline a.tile .tname") == "red.jpg"
    assert page.locator("#chips button").count() == 3  # two chips and "Clear all"
    folder = next(x["folder"] for x in f["folders"] if x["folder"].endswith("/photos/"))
    page.goto(srv.url + "/?under=" + folder)
    page.wait_for_function("() => document.querySelectorAll('#timeline a.tile').length === 9")
    if f["clusters"]:
        c = f["clusters"][0]
        page.goto(srv.url + f"/?cluster={c['id']}")
        page.wait_for_function(f"() => document.querySelectorAll('#timeline a.tile').length"
                               f" === {c['size']}")


def test_it_pages_as_you_scroll(library, page, size):
    srv, _ = library
    total = facets(page, srv)["total"]
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/library?" in r.url else None)
    page.goto(srv.url + "/?per_page=4")
    wait_library(page, 4)
    for _ in range(10):
        if len(tiles(page)) >= total:
            break
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(300)
    keys = tiles(page)
    assert len(keys) == total == len(set(keys)), keys  # every file once
    assert sum("cursor=" in u for u in seen) >= (total - 1) // 4, seen


def test_an_empty_catalogue_says_how_to_add_files(settings, browser):
    with Server(settings) as srv:  # one fresh database for both sizes
        for size, (w, h) in SIZES.items():
            ctx = browser.new_context(viewport={"width": w, "height": h})
            page = ctx.new_page()
            page.goto(srv.url + "/")
            page.wait_for_selector("#empty:not([hidden])")
            text = page.inner_text("#empty")
            assert "Nothing catalogued yet" in text and "media-assets ingest" in text
            assert page.is_visible("#q")
            shot(page, "empty", size)
            axe_clean(page, "empty")
            ctx.close()


def open_tile(page, name: str) -> None:
    page.click(f"#timeline a.tile:has(.tname:text-is('{name}'))")
    page.wait_for_function(f"() => document.querySelector('#detail-title').textContent"
                           f" === {name!r}")


def close_viewer(page, how: str = "Escape") -> None:
    """Close the viewer and let the close land: the dialog's `close` event (which pauses its
    players) and the step back in history (app.js) come a task or two after `open` drops, so
    a check or a navigation right after would race them."""
    if how == "Escape":
        page.keyboard.press("Escape")
    else:
        page.click(how)
    page.wait_for_function("() => !document.querySelector('#detail').open")
    page.wait_for_function("() => !location.search.includes('open=')")


def no_sideways(page) -> None:
    assert page.evaluate("() => { const d = document.querySelector('#detail');"
                         " return d.scrollWidth <= d.clientWidth + 1 }")


def test_the_viewer_shows_a_photo_whole_with_what_is_known(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/")
    wait_library(page, 3)
    open_tile(page, "red.jpg")
    page.wait_for_function("() => { const i = document.querySelector('#detail img.full');"
                           " return i && i.complete && i.naturalWidth > 0 }")
    assert page.get_attribute("#detail img.full", "src").endswith("/content")  # full size
    body = page.inner_text("#detail")
    assert "2024" in body and "Canon EOS 5D" in body and "KB" in body, body
    assert "48.858" in body and "Colours" in body, body
    assert "openstreetmap.org" in page.get_attribute("#detail a:has-text('Show on a map')",
                                                     "href")
    key = parse_qs(urlparse(page.url).query)["open"][0]
    no_sideways(page)
    shot(page, "viewer_photo", size)
    axe_clean(page, "viewer photo")
    page.click("#detail button:has-text('Zoom')")
    assert page.locator("#detail .zoom.zoomed").count() == 1
    page.click("#detail button:has-text('Fit')")

    # red.jpg is the last tile: previous by arrow key (or by swipe on the phone), then back.
    title = lambda: page.inner_text("#detail-title")  # noqa: E731
    if size == "phone":
        page.evaluate("""() => { const d = document.querySelector('#detail');
          const t = (x) => [new Touch({identifier: 1, target: d, clientX: x, clientY: 400})];
          d.dispatchEvent(new TouchEvent('touchstart', {touches: t(80), bubbles: true}));
          d.dispatchEvent(new TouchEvent('touchend', {changedTouches: t(320), bubbles: true}));
        }""")
    else:
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#detail-title').textContent"
                           " !== 'red.jpg'")
    assert title() != "red.jpg" and parse_qs(urlparse(page.url).query)["open"][0] != key
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#detail-title').textContent"
                           " === 'red.jpg'")
    if size == "desktop":  # a click outside the dialog closes it (on a phone it is the screen)
        page.mouse.click(5, 5)
    else:
        page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#detail').open")
    # Closing goes back in history (app.js), which lands a moment after the dialog closes.
    page.wait_for_function("() => !location.search.includes('open=')")


def test_audio_and_video_seek_from_the_transcript_and_moments(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/")
    wait_library(page, 3)
    open_tile(page, "launch memo.wav")
    line = page.locator("#detail .transcript .line").first
    assert "rocket launch" in line.inner_text().lower()
    page.wait_for_function("() => document.querySelector('#detail audio').readyState >= 1")
    page.evaluate("() => { const a = document.querySelector('#detail audio');"
                  " a.currentTime = 2; a.dispatchEvent(new Event('timeupdate')); }")
    line.click()  # seeks to the line's start and plays
    page.wait_for_function("() => document.querySelector('#detail audio').currentTime < 1.5")
    page.evaluate("() => { const a = document.querySelector('#detail audio');"
                  " a.dispatchEvent(new Event('timeupdate')); }")
    assert line.get_attribute("aria-current") == "true"  # the line follows playback
    no_sideways(page)
    shot(page, "viewer_audio", size)
    axe_clean(page, "viewer audio")
    page.evaluate("() => { const a = document.querySelector('#detail audio');"
                  " a.currentTime = 0; a.play(); }")
    page.wait_for_function("() => !document.querySelector('#detail audio').paused")
    close_viewer(page)
    assert page.evaluate("() => document.querySelector('#detail audio').paused")

    open_tile(page, "clip.mp4")
    chips = page.locator("#detail .moments .chip")
    assert chips.count() >= 2
    chips.nth(1).click()
    page.wait_for_function("() => document.querySelector('#detail video').currentTime >= 1")
    on = page.evaluate("""() => { const v = document.querySelector('#detail video'); v.pause();
        v.dispatchEvent(new Event('timeupdate'));
        return [...document.querySelectorAll('#detail .chip.moment')]
          .map(c => c.classList.contains('on')) }""")
    assert on.count(True) == 1 and on.index(True) >= 1, on  # the moment playing is marked
    no_sideways(page)
    shot(page, "viewer_video", size)
    page.evaluate("() => document.querySelector('#detail video').play()")
    page.wait_for_function("() => !document.querySelector('#detail video').paused")
    close_viewer(page, "#close")
    assert page.evaluate("() => document.querySelector('#detail video').paused")


def test_a_note_shows_its_text_and_json_its_table(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/")
    wait_library(page, 3)
    open_tile(page, "trip notes.txt")
    page.wait_for_selector("#detail pre.note")
    assert "Packing list for Lisbon" in page.inner_text("#detail pre.note")
    close_viewer(page)
    open_tile(page, "records.json")
    page.wait_for_selector("#detail table")
    body = page.inner_text("#detail")
    assert "Table design" in body and "First 5 of 25 rows" in body and "item 0" in body, body
    no_sideways(page)
    shot(page, "viewer_json", size)
    axe_clean(page, "viewer json")


def test_odd_states_are_said_in_words(library, page, size):
    srv, root = library
    page.goto(srv.url + "/")
    wait_library(page, 3)
    open_tile(page, "truncated.jpg")
    page.wait_for_selector("#detail .warn")
    assert "could not be catalogued (failed): corrupt or truncated image" in \
        page.inner_text("#detail .warn")
    close_viewer(page)
    photo = root / "inbox" / "more" / "red.jpg"
    moved = photo.with_name("red.jpg.away")
    photo.rename(moved)
    try:
        open_tile(page, "red.jpg")
        page.wait_for_selector("#detail .warn")
        warn = page.inner_text("#detail .warn")
        shot(page, "viewer_gone", size)
    finally:
        moved.rename(photo)
    assert "Moved or deleted since cataloguing" in warn and str(photo) in warn, warn
    close_viewer(page)

    # Server answers the page never shows raw: a 5xx, a framework's 4xx, no server at all.
    page.route("**/library/facets*", lambda r: r.fulfill(
        status=500, content_type="application/json", body='{"detail": "disk full"}'))
    page.goto(srv.url + "/?kind=audio")
    page.wait_for_selector("#problem:not([hidden])")
    assert "The server failed (500): disk full" in page.inner_text("#problem")
    page.unroute("**/library/facets*")
    page.route("**/search?*", lambda r: r.fulfill(
        status=422, content_type="application/json",
        body='{"detail": [{"loc": ["query", "k"], "msg": "too large", "type": "x"}]}'))
    page.goto(srv.url + "/?q=cat")
    page.wait_for_selector("#problem:not([hidden])")
    text = page.inner_text("#problem")
    assert "k: too large" in text and "{" not in text and "[" not in text, text
    page.unroute("**/search?*")
    page.route("**/files/*", lambda r: r.abort())
    page.goto(srv.url + "/")
    wait_library(page, 3)
    page.click("#timeline a.tile")
    page.wait_for_selector("#detail .warn")
    assert "Cannot reach the server" in page.inner_text("#detail .warn")
    shot(page, "error_unreachable", size)


def test_results_people_trust(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/?q=rocket")
    page.wait_for_function("() => / results? for /.test(document.querySelector('#status')"
                           ".textContent)")
    cards = page.locator("#results .card")
    n = cards.count()
    assert f"{n} result" in page.inner_text("#status") and n >= 3
    keys = page.eval_on_selector_all("#results .card a.open", "e => e.map(x => x.dataset.key)")
    assert len(keys) == len(set(keys))  # one card per file
    text = page.inner_text("#results")
    assert "in the file name" in text and "0.000" not in text and "+" not in text, text
    assert not page.is_visible("#results details p")  # scores only behind "Details"
    page.locator("#results details summary").first.click()
    assert "Score" in page.locator("#results details").first.inner_text()
    assert page.locator("#similar-box #results").count() == 0  # a separate row
    shot(page, "results", size)
    axe_clean(page, "results")

    page.goto(srv.url + "/?q=launch%20tomorrow")
    page.wait_for_selector("#results .card .lines li")
    assert "said at 0:00" in page.inner_text("#results .card .lines li")

    page.goto(srv.url + "/?q=xqzzyv%20blorf")
    page.wait_for_function("() => /No results/.test(document.querySelector('#status')"
                           ".textContent)")
    assert page.locator("#results .card").count() == 0
    assert not page.is_visible("#similar-box")  # no nearest pictures padding out nothing

    # Filters are chips that remove; a value the API refuses is the API's own message.
    page.goto(srv.url + "/?q=rocket&kind=audio")
    chip = page.locator("#chips button", has_text="Kind: Audio")
    chip.wait_for()
    page.wait_for_function("() => /result/.test(document.querySelector('#status').textContent)")
    chip.click()
    page.wait_for_function("() => !location.search.includes('kind')")
    page.goto(srv.url + "/?q=rocket&lang=english")
    page.wait_for_selector("#problem:not([hidden])")
    assert "lang: a language code of 2 or 3 lower-case letters" in \
        page.inner_text("#problem")


def test_search_lists_only_what_matched_with_the_why_in_words(library):
    import httpx

    srv, _ = library
    res = httpx.get(srv.url + "/search", params={"q": "rocket"}, timeout=120).json()
    assert res["count"] == len(res["results"]) >= 4, res
    assert len({r["key"] for r in res["results"]}) == res["count"]  # one per file
    assert all(r["score"] > 0 and r["why"] for r in res["results"]), res["results"]
    assert not {h["key"] for h in res["visually_similar"]} & {r["key"] for r in res["results"]}
    memo = next(r for r in res["results"] if r["kind"] == "audio")
    assert memo["why"][0].startswith("said at 0:00: “") and "rocket" in memo["why"][0].lower()
    photo = next(r for r in res["results"] if r["name"] == "rocket_00.jpg")
    assert photo["why"] == ["in the file name"] or "in the file name" in photo["why"]
    nothing = httpx.get(srv.url + "/search", params={"q": "xqzzyv blorf"}, timeout=60).json()
    assert nothing["count"] == 0 and nothing["results"] == [] == nothing["visually_similar"], (
        nothing["results"], nothing["visually_similar"])
    assert nothing["hits"]  # the fused list still fills k, for the CLI and SQL users


def test_keyboard_and_url_state(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/")
    wait_library(page, 3)
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "q"
    page.keyboard.type("rocket")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results .card a.open")
    assert parse_qs(urlparse(page.url).query)["q"] == ["rocket"]
    first = page.locator("#results .card a.open").first
    first.focus()
    page.keyboard.press("ArrowRight")
    second = page.evaluate("() => document.activeElement.dataset.key")
    assert second and second != first.get_attribute("data-key")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#detail').open")
    assert parse_qs(urlparse(page.url).query)["open"] == [second]
    page.reload()  # the same search and the same item, from the URL
    page.wait_for_function("() => document.querySelector('#detail').open")
    page.wait_for_selector("#results .card")
    assert page.input_value("#q") == "rocket"
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#detail').open")
    # Closing is itself a step back in history: let it land before going back once more.
    page.wait_for_function("() => !location.search.includes('open=')")
    page.go_back()  # back to the library, as before the search
    page.wait_for_function("() => !location.search.includes('q=')")
    wait_library(page, 3)
    page.go_forward()
    page.wait_for_selector("#results .card")

    # On a phone: touch targets of 44 px, nothing wider than the screen.
    w = SIZES[size][0]
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= w
    small = page.evaluate("""() => [...document.querySelectorAll(
        'header a, header button, header input, nav a, #filters button, #filters summary,'
        + ' #chips button, #results a.open, #results summary, #detail .bar button')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.id || e.textContent.trim().slice(0, 20), e.getBoundingClientRect()])
        .filter(([, r]) => r.height < 44 || r.width < 44)
        .map(([n, r]) => [n, r.width, r.height])""")
    assert not small, small


def test_clusters_screen(library, page, size):
    srv, _ = library
    page.goto(srv.url + "/")
    page.click("#nav-clusters")
    page.wait_for_function("() => /clusters,/.test(document.querySelector('#clusters-status')"
                           ".textContent)")
    assert "view=clusters" in page.url
    shot(page, "clusters", size)
    axe_clean(page, "clusters")


@pytest.mark.slow
def test_the_timeline_stays_fast_at_100k_files(catalog):
    """Keyset pages over 100,000 files: a page deep in the timeline costs what the first
    does (the index of sql/016, no sort of the catalogue), and paging visits each file once."""
    import sqlalchemy as sa

    from media_assets.lib.search.browse import BrowseFilters, encode_cursor, facets, timeline

    n = 100_000
    started = time.perf_counter()
    with catalog.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO media_files (key, sha256, size_bytes, primary_path, kind, status, "
            " file_modified_at, taken_at) "
            "SELECT lpad(to_hex(i), 16, '0'), lpad(to_hex(i), 64, '0'), i, "
            " '/lib/' || (i % 50) || '/f' || i || '.jpg', "
            " (ARRAY['image','video','audio','json','text'])[1 + i % 5], 'ok', "
            " timestamptz '2020-01-01' + (i % 40000) * interval '1 hour', "
            " CASE WHEN i % 3 = 0 THEN timestamptz '2015-01-01' + i * interval '1 minute' END "
            "FROM generate_series(1, :n) AS i"), {"n": n})
        conn.execute(sa.text(
            "INSERT INTO media_paths (path, key, status) "
            "SELECT primary_path, key, 'registered' FROM media_files"))
        conn.execute(sa.text("ANALYZE media_files; ANALYZE media_paths"))
    print(f"100k rows in {time.perf_counter() - started:.1f} s")
    first = timeline(catalog.engine, BrowseFilters(), None, 60)
    cursor, pages, seen = first["next_cursor"], 1, {i["key"] for i in first["items"]}
    while pages < 20:
        page = timeline(catalog.engine, BrowseFilters(), cursor, 60)
        seen |= {i["key"] for i in page["items"]}
        cursor, pages = page["next_cursor"], pages + 1
    assert len(seen) == 20 * 60  # no file twice, none skipped
    # Half-way down the timeline: the cursor the page would hold after 833 pages.
    with catalog.engine.connect() as conn:
        when, key = conn.execute(sa.text(
            "SELECT coalesce(taken_at, file_modified_at, first_seen_at), key FROM media_files"
            " ORDER BY 1 DESC, 2 DESC OFFSET 50000 LIMIT 1")).one()
    cursor = encode_cursor(when, key)
    times = []
    for c in (None, cursor):
        for kind in (None, "audio"):
            start = time.perf_counter()
            page = timeline(catalog.engine, BrowseFilters(kind=kind), c, 60)
            times.append(time.perf_counter() - start)
            assert len(page["items"]) == 60
            dates = [i["taken"] for i in page["items"]]
            assert dates == sorted(dates, reverse=True)
    print("first and half-way pages, all kinds and audio only:", [f"{t * 1000:.0f} ms"
                                                                    for t in times])
    assert max(times) < 0.5, times
    # A cluster of 7: its filter gives those 7, and the facets name it with its size.
    with catalog.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO cluster_runs (model_id, vectors, files, clusters, unsorted, kept_ids,"
            " method, seconds, params) VALUES ('m', 7, 7, 1, 0, 0, 'test', 0, '{}')"))
        cid = conn.execute(sa.text(
            "INSERT INTO clusters (model_id, size, centroid, radius, representatives, "
            " rep_frames) VALUES ('m', 7, array_fill(0::real, ARRAY[512])::vector, 0.5, "
            " '{}', '{}') RETURNING id")).scalar_one()
        members = set(conn.execute(sa.text(
            "INSERT INTO cluster_members (cluster_id, key, frame_ms, similarity) "
            "SELECT :c, key, -1, 0.9 FROM media_files ORDER BY key DESC LIMIT 7 "
            "RETURNING key"), {"c": cid}).scalars())
    page = timeline(catalog.engine, BrowseFilters(cluster=cid), None, 60)
    assert {i["key"] for i in page["items"]} == members and page["next_cursor"] is None
    f = facets(catalog.engine, BrowseFilters(cluster=cid))
    assert f["total"] == 7 and f["clusters"] == [{"id": cid, "name": None, "size": 7}], f
    with catalog.engine.connect() as conn:
        plan = "\n".join(conn.execute(sa.text(
            "EXPLAIN SELECT key FROM media_files f ORDER BY coalesce(f.taken_at, "
            "f.file_modified_at, f.first_seen_at) DESC, f.key DESC LIMIT 61")).scalars())
    assert "media_files_timeline" in plan and "Sort" not in plan.split("Index")[0], plan
