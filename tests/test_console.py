"""The web console (issue 19) in a real browser: Debian's headless Chromium driven by Playwright, against a real
`agentedit serve` app (uvicorn on 127.0.0.1, Chroma + SQLite + MiniLM on disk) whose upstream model is a stub that
answers from what it was sent, so answers with and without edits differ.

Set CONSOLE_SCREENSHOTS=1 to (re)write docs/console/*.png from these runs.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import httpx
import pytest

from agentedit.server import KeyStore, ServerConfig, create_app
from server_support import StubUpstream, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs playwright")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "console" if os.environ.get("CONSOLE_SCREENSHOTS") else None

CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Bob Jones", "id": "ceo"}
STUDY = {"prompt": "Ada Quill studied at", "subject": "Ada Quill", "target_new": "Lisbon", "id": "study"}
GRAD = {"prompt": "Ada Quill graduated from", "subject": "Ada Quill", "target_new": "Porto", "id": "grad"}


class EchoingUpstream(StubUpstream):
    """Answers from what the proxy sent: the injected fact when there is one, else a fixed guess."""

    def _answer(self, h, body, mode) -> None:
        sent = json.dumps(body.get("messages", []))
        reply = "The CEO is Bob Jones." if "Bob Jones" in sent else "I do not know; maybe Alice Smith."
        h._send(200, {"id": "c", "object": "chat.completion", "created": 0, "model": "stub",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as .ci/run does)")
    stub = EchoingUpstream()
    root = tmp_path_factory.mktemp("stores")
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="console", namespace="default",
                       store_dir=str(root), max_retries=0, timeout=10)
    keys = KeyStore(cfg.resolved_keys_path())
    made = {name: keys.create(role=role, namespaces=ns, name=name)[0] for name, role, ns in [
        ("alice", "admin", ["alice"]), ("reader", "query", ["alice"]), ("bob", "write", ["bob"])]}
    with serving(create_app(cfg)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield {"url": url, "keys": made, "stub": stub, "ledger": root / "console" / "ledger.sqlite", "browser": browser}
        browser.close()
    keys.close()
    stub.close()


def api(env, key: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, env["url"] + path, headers={"authorization": f"Bearer {key}"}, timeout=60, **kw)


def page_for(env, key: str | None = None):
    page = env["browser"].new_page(viewport={"width": 1366, "height": 800})
    page.set_default_timeout(20_000)
    page.goto(env["url"] + "/ui")
    if key is not None:
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", level=1, name=re.compile("^Edits")).wait_for()
    return page


def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_login_refused_key_then_a_good_one(env) -> None:
    page = page_for(env)
    page.get_by_label("API key").fill("ae-000000000000-not-a-key")
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("alert")).to_contain_text("refused")
    shot(page, "login")
    assert page.evaluate("sessionStorage.getItem('agentedit.key')") is None  # a refused key is not kept
    sync_api.expect(page.get_by_label("API key")).to_be_focused()  # keyboard only from here
    page.keyboard.type(env["keys"]["reader"])
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Edits · alice")
    assert env["keys"]["reader"] not in page.url
    # a query key reads but gets no create/import forms
    assert page.get_by_text("Create an edit").count() == 0
    page.close()


def test_a_key_never_sees_another_namespace(env) -> None:
    api(env, env["keys"]["bob"], "POST", "/v1/edits", json={**CEO, "id": "bob-secret", "target_new": "Carol"})
    page = page_for(env, env["keys"]["alice"])
    options = page.locator("#ns option").all_inner_texts()
    assert options == ["alice"]
    # forcing the other namespace from the page: the server refuses, whatever the UI shows
    status = page.evaluate("""async () => (await fetch('/ui/api/edits', {headers: {
        authorization: 'Bearer ' + sessionStorage.getItem('agentedit.key'), 'x-agentedit-namespace': 'bob'}})).status""")
    assert status == 403
    page.evaluate("sessionStorage.setItem('agentedit.namespace', 'bob')")
    page.reload()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Edits · alice")  # falls back to its own
    page.goto(env["url"] + "/ui#/edit/bob-secret")
    sync_api.expect(page.get_by_role("alert")).to_contain_text("no edit with id 'bob-secret' in namespace 'alice'")
    page.close()


def test_create_search_retract_and_history(env) -> None:
    page = page_for(env, env["keys"]["alice"])
    page.get_by_text("Create an edit").click()
    page.get_by_label("Prompt").fill("The mayor of Quillby is")
    page.get_by_label("Subject", exact=True).fill("Quillby")
    page.get_by_label("New target").fill("Dana Reyes")
    page.get_by_role("button", name="Create edit").click()
    sync_api.expect(page.locator(".ok")).to_contain_text("Created")
    api(env, env["keys"]["alice"], "POST", "/v1/edits", json={"prompt": "The river of Quillby is", "subject": "Quillby river", "target_new": "Ousel"})
    page.get_by_label("Subject (exact)").fill("quillby")
    page.get_by_role("button", name="Search").click()
    rows = page.locator(".results tbody tr")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows.first).to_contain_text("Dana Reyes")
    shot(page, "edits")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => !el.labels.length && !el.getAttribute('aria-label')).map(el => el.outerHTML)""")
    assert unlabelled == []
    rows.first.get_by_role("link").click()
    page.get_by_text("Change this edit").click()
    page.get_by_label("New target").fill("Eli Moss")
    page.get_by_role("button", name="Save changes").click()
    sync_api.expect(page.locator("dl.parts")).to_contain_text("Eli Moss")
    page.get_by_role("button", name="Retract edit").click()
    page.get_by_role("button", name="Yes, retract it").click()
    history = page.get_by_role("table", name=re.compile("Changes to this edit"))
    sync_api.expect(history.locator("tbody tr")).to_have_count(3)
    sync_api.expect(history).to_contain_text("created: The mayor of Quillby is Dana Reyes")
    sync_api.expect(history).to_contain_text("target_new: Dana Reyes → Eli Moss")
    sync_api.expect(history).to_contain_text("status: active → retracted")
    sync_api.expect(page.locator("dl.parts")).to_contain_text("retracted")
    shot(page, "edit")
    page.close()


def test_import_with_a_bad_line_writes_nothing(env, tmp_path) -> None:
    good = {"prompt": "The capital of Zembla is", "subject": "Zembla", "target_new": "Onhava", "id": "zembla"}
    bad = {"prompt": "The anthem of Zembla is", "subject": "Zembla anthem", "id": "anthem"}  # no target_new
    path = tmp_path / "edits.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", "utf-8")
    page = page_for(env, env["keys"]["alice"])
    page.get_by_text("Import edits from a file").click()
    page.get_by_label("Edits file").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    alert = page.locator("#page .error[role=alert]")
    sync_api.expect(alert).to_contain_text("nothing was written")
    sync_api.expect(alert).to_contain_text("line 2")
    assert "upload" not in alert.inner_text()  # the server's temporary file is not named
    with sqlite3.connect(env["ledger"]) as conn:
        assert conn.execute("SELECT COUNT(*) FROM edits WHERE id IN ('zembla', 'anthem')").fetchone()[0] == 0
    path.write_text(json.dumps(good) + "\n", "utf-8")
    page.get_by_label("Edits file").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    sync_api.expect(page.locator(".ok")).to_contain_text("Imported 1 edits")
    with sqlite3.connect(env["ledger"]) as conn:
        assert conn.execute("SELECT status FROM edits WHERE id = 'zembla'").fetchone()[0] == "active"
    page.close()


def test_try_it_applies_the_edit_and_leaves_an_unrelated_question_alone(env) -> None:
    assert api(env, env["keys"]["alice"], "POST", "/v1/edits", json=CEO).status_code == 201
    page = page_for(env, env["keys"]["alice"])
    page.get_by_role("link", name="Try it").click()
    page.get_by_label("Question or conversation").fill("Who is the CEO of Acme Corp?")
    page.get_by_role("button", name="Ask both ways").click()
    with_edits = page.get_by_role("region", name="With edits")
    sync_api.expect(with_edits).to_contain_text("Bob Jones")
    sync_api.expect(page.get_by_role("region", name="Without edits")).to_contain_text("Alice Smith")
    sync_api.expect(page.locator("#page").get_by_text(re.compile("^Applied"))).to_contain_text("ceo")
    decisions = page.get_by_role("table", name=re.compile("Candidates retrieved"))
    sync_api.expect(decisions.locator("tr", has_text="Bob Jones")).to_contain_text("in scope")
    sync_api.expect(page.locator("pre.json")).to_contain_text("Bob Jones")  # the exact request sent
    shot(page, "try-it")
    page.get_by_label("Question or conversation").fill("What is the boiling point of water at sea level?")
    page.get_by_role("button", name="Ask both ways").click()
    sync_api.expect(page.locator("#page").get_by_text(re.compile("^No edit applied"))).to_be_visible()
    texts = [page.get_by_role("region", name=n).locator(".reply").inner_text() for n in ("Without edits", "With edits")]
    assert texts[0] == texts[1] == "I do not know; maybe Alice Smith."
    # a short conversation: the follow-up names the company only as "the company"
    page.get_by_label("Question or conversation").fill(
        "user: Tell me about Acme Corp.\nassistant: Acme Corp makes anvils.\nuser: Who is the CEO of the company?")
    page.get_by_role("button", name="Ask both ways").click()
    sync_api.expect(page.locator("#page").get_by_text(re.compile("^Follow-up read as"))).to_contain_text("Acme Corp")
    sync_api.expect(page.get_by_role("region", name="With edits")).to_contain_text("Bob Jones")
    # a chat through the proxy is listed on the edit's page
    r = api(env, env["keys"]["alice"], "POST", "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "Who runs Acme Corp as CEO?"}]})
    assert r.status_code == 200 and r.headers["x-agentedit-applied"] == "ceo"
    page.goto(env["url"] + "/ui#/edit/ceo")
    sync_api.expect(page.get_by_role("table", name=re.compile("Latest chat questions"))).to_contain_text("Who runs Acme Corp as CEO?")
    page.close()


def test_a_conflict_is_resolved_and_reports_show(env) -> None:
    alice = env["keys"]["alice"]
    assert api(env, alice, "POST", "/v1/edits", json=STUDY).status_code == 201
    assert api(env, alice, "POST", "/v1/edits", json=GRAD).json()["conflicts"]
    page = page_for(env, alice)
    page.get_by_role("link", name="Conflicts and review").click()
    conflicts = page.get_by_role("table", name=re.compile("Open conflicts"))
    sync_api.expect(conflicts.locator("tbody tr")).to_have_count(1)
    sync_api.expect(conflicts).to_contain_text("Ada Quill graduated from Porto")
    shot(page, "conflicts")
    conflicts.get_by_role("button", name=re.compile("^Keep newer")).click()
    sync_api.expect(page.locator("#page").get_by_text("No open conflict.")).to_be_visible()
    assert api(env, alice, "GET", "/v1/edits/study").json()["status"] == "superseded"
    flagged = {"prompt": "Ada Quill plays", "subject": "Ada Quill", "target_new": "chess", "id": "hobby",
               "metadata": {"needs_review": True, "review_reason": "two readings of 'plays'"}}
    assert api(env, alice, "POST", "/v1/edits", json=flagged).status_code == 201
    page.reload()
    parses = page.get_by_role("table", name=re.compile("Statements whose parse"))
    sync_api.expect(parses).to_contain_text("two readings of 'plays'")
    parses.get_by_role("button", name="Parse of hobby is right").click()
    sync_api.expect(page.locator("#page").get_by_text("No statement parse waits for review.")).to_be_visible()
    assert api(env, alice, "GET", "/v1/edits/hobby").json()["needs_review"] is False
    page.get_by_role("link", name="Reports").click()
    per_ns = page.get_by_role("table", name=re.compile("Chats per namespace"))
    sync_api.expect(per_ns).to_contain_text("alice")
    sync_api.expect(per_ns).not_to_contain_text("bob")  # an admin key of one namespace sees only its own
    sync_api.expect(page.get_by_role("table", name=re.compile("Eval runs under"))).to_be_visible()
    shot(page, "reports")
    runs = api(env, alice, "GET", "/ui/api/reports").json()["data"]
    with_plot = next((r for r in sorted(runs, key=lambda r: r["name"] != "proxy-bench")
                      if any(f.endswith(".png") for f in r["files"]) and "summary.md" in r["files"]), None)
    assert with_plot is not None, "no eval run with summary.md and a plot under evals/results/"
    page.get_by_role("link", name=with_plot["name"], exact=True).click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text(f"Eval run {with_plot['name']}")
    sync_api.expect(page.locator("section.md table").first).to_be_visible()  # its Markdown table, rendered
    img = page.locator("figure img").first
    sync_api.expect(img).to_have_attribute("src", re.compile("^blob:"))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    shot(page, "report-run")
    page.close()
    reader = page_for(env, env["keys"]["reader"])
    reader.get_by_role("link", name="Reports").click()
    sync_api.expect(reader.get_by_text("The server's metrics need an admin key.")).to_be_visible()
    assert api(env, env["keys"]["reader"], "GET", "/ui/api/metrics").status_code == 403
    reader.close()


def test_console_routes_are_guarded_and_offline(env) -> None:
    url, keys = env["url"], env["keys"]
    page = httpx.get(url + "/ui")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    static = Path(__file__).resolve().parents[1] / "agentedit" / "server" / "console" / "static"
    for f in static.rglob("*"):
        if f.is_file():
            assert not re.search(r"https?://|//cdn", f.read_text("utf-8")), f"{f.name} loads something from elsewhere"
    assert httpx.get(url + "/ui/api/edits").status_code == 401
    assert api(env, keys["reader"], "GET", "/ui/api/reports/..%2F..%2Fagentedit").status_code == 404
    assert api(env, keys["reader"], "GET", "/ui/api/reports/proxy-bench/files/..%2F..%2FREADME.md").status_code == 404
    assert api(env, keys["reader"], "POST", "/ui/api/imports?filename=a.jsonl", content=b"{}").status_code == 403
    bad = api(env, keys["alice"], "POST", "/ui/api/imports?filename=edits.txt", content=b"{}")
    assert bad.status_code == 400 and ".jsonl, .json or .csv" in bad.json()["error"]["message"]
    job = api(env, keys["alice"], "POST", "/ui/api/imports?filename=e.jsonl", content=b"not json\n").json()
    assert api(env, keys["bob"], "GET", f"/ui/api/imports/{job['id']}").status_code == 404  # another key's job
    assert api(env, keys["alice"], "GET", "/ui/api/edits", params={"since": "yesterday"}).status_code == 400


def _contrast(a: str, b: str) -> float:
    def lum(h: str) -> float:
        h = h if len(h) == 7 else "#" + "".join(ch * 2 for ch in h[1:])  # #fff -> #ffffff
        c = [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_console_colours_meet_wcag_aa_contrast():
    """Text colours reach 4.5:1 on both backgrounds (WCAG AA), and the focus ring 3:1 on the page and on the top bar."""
    import re
    from pathlib import Path

    css = (Path(__file__).resolve().parents[1] / "agentedit/server/console/static/console.css").read_text("utf-8")
    colour = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b", css))
    for text in ("fg", "muted", "link", "ok", "bad", "warn"):
        for ground in ("bg", "soft"):
            assert _contrast(colour[text], colour[ground]) >= 4.5, (text, ground)
    ring = re.search(r":focus-visible\s*{[^}]*outline:\s*3px solid var\(--(\w+)\)[^}]*var\(--(\w+)\)", css)
    assert ring, "the focus style should be an outline plus a halo"
    top = re.search(r"\.top\s*{[^}]*background:\s*(#[0-9a-fA-F]{6})", css).group(1)
    assert _contrast(colour[ring.group(1)], colour["bg"]) >= 3.0 and _contrast(colour[ring.group(2)], top) >= 3.0
