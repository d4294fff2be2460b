"""The curation UI (`mason.curate.app`), driven headless: every key lands in the decisions file at once,
and the curated dataset read back from a fresh store is exactly what was decided."""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Static, TextArea  # noqa: E402

from mason.curate.app import CurationApp  # noqa: E402
from mason.curate.highlight import HIGHLIGHT_STYLE, answer_spans, highlighted  # noqa: E402
from mason.curate.screens import HelpScreen, PromptScreen, QuestionAnswerScreen, ThresholdScreen  # noqa: E402
from mason.curate.session import CurationSession  # noqa: E402
from mason.curate.store import DecisionStore  # noqa: E402

CHUNKS = {
    "c-manual": "# Manual\n\nThe buoy measures five parameters. Readings are taken every 15 minutes by default and "
                "sent over LTE-M. The battery lasts 21 days without sun.",
    "c-faq": "## FAQ\n\nWhy are there gaps? Short gaps mean the buoy restarted. Longer gaps mean the buoy lost its "
             "network and the readings fill in later.",
    "c-notes": "Old notes: the buoy used to report every hour over 3G.",
}
# id, doc, chunk, task, judge score, question, answer
SAMPLES = [
    ("s1", "manual.pdf", "c-manual", "question_answering", 9.0, "How often are readings taken?",
     "Readings are taken every 15 minutes by default."),
    ("s2", "manual.pdf", "c-manual", "question_answering", 8.0, "How long does the battery last?",
     "The battery lasts 12 days."),
    ("s3", "manual.pdf", "c-manual", "knowledge", 5.0, "What does it measure?",
     "It measures five parameters."),
    ("s4", "manual.pdf", "c-manual", "knowledge", 9.5, "How is data sent?", "Data is sent over LTE-M."),
    ("s5", "faq.txt", "c-faq", "question_answering", 9.0, "Why are there gaps?",
     "Longer gaps mean the buoy lost its network."),
    ("s6", "faq.txt", "c-faq", "question_answering", 6.0, "What do short gaps mean?",
     "Short gaps mean the buoy restarted."),
    ("s7", "faq.txt", "c-faq", "knowledge", 7.0, "Do readings come back?", "The readings fill in later."),
    ("s8", "notes.md", "c-notes", "question_answering", 4.0, "How often does the buoy report?",
     "Every hour over 3G."),
]
REJECTED = ("r1", "manual.pdf", "c-manual", "knowledge", None, "How many parameters are measured?",
            "The buoy measures five parameters.")


def _row(sid, doc, chunk, task, score, question, answer, *, reason=None):
    meta = {"source": {"doc": doc, "chunk": chunk, "span": [0, 10]}, "task": task, "split": "train",
            "scores": {"judge": score} if score is not None else {"quality": 0.8}}
    if reason:
        meta["rejected"] = {"reason": reason, "stage": "knowledge"}
    return {"id": sid, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "meta": meta}


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def workspace(tmp_path):
    gen, ingest = tmp_path / "generate", tmp_path / "ingest"
    _write_jsonl(gen / "samples.jsonl", [_row(*s) for s in SAMPLES])
    _write_jsonl(gen / "rejected.jsonl", [_row(*REJECTED, reason="heldout_near_duplicate")])
    _write_jsonl(ingest / "chunks.jsonl", [{"id": cid, "doc": "x", "text": text} for cid, text in CHUNKS.items()])
    return tmp_path


def _session(ws: Path, *, seeds: bool = True) -> tuple[CurationSession, DecisionStore]:
    store = DecisionStore.open(ws / "curation.sqlite", who="tester")
    session = CurationSession.load(ws / "generate", ws / "ingest", store, ws / "seeds.jsonl" if seeds else None)
    return session, store


def _cursor_id(app: CurationApp) -> str | None:
    item = app.current_item()
    return item.id if item else None


async def _type(pilot, text: str) -> None:
    for ch in text:
        await pilot.press("space" if ch == " " else ch)
    await pilot.pause()


async def _set_filter(pilot, app: CurationApp, query: str) -> None:
    await pilot.press("slash")
    app.query_one("#filter", Input).value = query
    await pilot.press("enter")
    await pilot.pause()


async def _answer_prompt(pilot, app: CurationApp, text: str) -> None:
    assert isinstance(app.screen, PromptScreen)
    app.screen.query_one("#prompt", Input).value = text
    await pilot.press("enter")
    await pilot.pause()


async def _fill_qa(pilot, app: CurationApp, question: str, answer: str) -> None:
    assert isinstance(app.screen, QuestionAnswerScreen)
    app.screen.query_one("#question", TextArea).load_text(question)
    app.screen.query_one("#answer", TextArea).load_text(answer)
    await pilot.press("ctrl+s")
    await pilot.pause()


def test_review_workflow_is_saved_as_decided(workspace):
    async def main() -> None:
        session, store = _session(workspace)
        app = CurationApp(session)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            table = app.query_one("#samples", DataTable)
            assert table.row_count == 9  # 8 generated + 1 from the rejected pool

            # filter as you type: no Enter needed
            await pilot.press("slash")
            await _type(pilot, "doc:faq")
            assert table.row_count == 3 and {it.id for it in app.listed} == {"s5", "s6", "s7"}
            await _set_filter(pilot, app, "task:knowledge score>=7")
            assert [it.id for it in app.listed] == ["s4", "s7", "r1"]  # r1: 10 x quality 0.8
            await _set_filter(pilot, app, "")
            assert table.row_count == 9 and app.focused is table
            assert _cursor_id(app) == "s4"  # the sample under the cursor stays under it when the filter changes
            await pilot.press("ctrl+home")
            await pilot.pause()

            # approve: the cursor moves on
            assert _cursor_id(app) == "s1"
            await pilot.press("a")
            await pilot.pause()
            assert session.state(session.by_id["s1"]) == "approved"
            assert "✓" in str(table.get_cell("s1", "mark")) and _cursor_id(app) == "s2"

            # reject with a reason
            await pilot.press("r")
            await pilot.pause()
            await _answer_prompt(pilot, app, "wrong number")
            assert session.decision("s2").reason == "wrong number" and _cursor_id(app) == "s3"
            assert "✗" in str(table.get_cell("s2", "mark"))

            # reject, then cancel with Esc: nothing changes
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert session.state(session.by_id["s3"]) == "undecided" and _cursor_id(app) == "s3"

            # edit, then approve the edited sample
            await pilot.press("e")
            await pilot.pause()
            assert app.screen.query_one("#question", TextArea).text == "What does it measure?"
            await _fill_qa(pilot, app, "Which parameters does the buoy measure?", "Five parameters.")
            assert "✎" in str(table.get_cell("s3", "mark"))
            assert "Which parameters" in str(table.get_cell("s3", "question"))
            assert "Five parameters." in str(app.query_one("#sample", Static).content)
            await pilot.press("a")
            await pilot.pause()
            assert _cursor_id(app) == "s4"

            # approve, then undo: undecided again and the cursor back on it
            await pilot.press("a")
            await pilot.pause()
            assert _cursor_id(app) == "s5"
            await pilot.press("u")
            await pilot.pause()
            assert session.state(session.by_id["s4"]) == "undecided" and _cursor_id(app) == "s4"
            assert "·" in str(table.get_cell("s4", "mark"))

            # x resets a decision
            await pilot.press("down", "a", "up", "x")
            await pilot.pause()
            assert session.state(session.by_id["s5"]) == "undecided" and _cursor_id(app) == "s5"
            assert session.decision("s5").decision == "undecided"

            # bulk approve over the filtered list only: s5 (9) and s7 (7) but not s6 (6), nor s4 (9.5, manual)
            await _set_filter(pilot, app, "doc:faq")
            await pilot.press("A")
            await pilot.pause()
            assert isinstance(app.screen, ThresholdScreen)
            app.screen.query_one("#threshold", Input).value = "6.5"
            await pilot.press("enter")
            await pilot.pause()
            assert [session.state(session.by_id[s]) for s in ("s5", "s6", "s7", "s4")] == \
                ["approved", "undecided", "approved", "undecided"]
            assert "✓" in str(table.get_cell("s7", "mark"))

            # reject a whole document, with a reason
            await _set_filter(pilot, app, "doc:notes")
            await pilot.press("D")
            await pilot.pause()
            await _answer_prompt(pilot, app, "outdated")
            assert session.decision("s8").reason == "outdated"

            # the rejected pool: p toggles it, approving there rescues
            await _set_filter(pilot, app, "")
            await pilot.press("p")
            await pilot.pause()
            assert app.query_one("#filter", Input).value == "pool:rejected"
            assert [it.id for it in app.listed] == ["r1"]
            assert "heldout_near_duplicate" in str(app.query_one("#sample", Static).content)
            await pilot.press("a")
            await pilot.pause()
            assert session.counts()["rescued"] == 1 and "R" in str(table.get_cell("r1", "mark"))
            await pilot.press("p")
            await pilot.pause()
            assert app.query_one("#filter", Input).value == "" and table.row_count == 9

            # a seed instruction
            await pilot.press("s")
            await pilot.pause()
            await _fill_qa(pilot, app, "What colour is the buoy?", "Yellow.")

            # the counts line follows every action
            counts = str(app.query_one("#counts", Static).content)
            assert "approved 4 · rejected 2 · undecided 2 · edited 1 · rescued 1" in counts

            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0 or app.return_code is None
        store.close()

    asyncio.run(main())

    # read back from a fresh store: the curated dataset is exactly what was decided
    session, store = _session(workspace)
    try:
        kept, dropped, counts = session.curated("drop")
    finally:
        store.close()
    by_id = {r["id"]: r for r in kept}
    assert set(by_id) == {"s1", "s3", "s5", "s7", "r1"}
    assert by_id["s3"]["messages"][0]["content"] == "Which parameters does the buoy measure?"
    assert by_id["s3"]["messages"][1]["content"] == "Five parameters."
    assert by_id["s3"]["meta"]["curation"]["edited"] is True
    assert by_id["r1"]["meta"]["curation"]["rescued"] is True and "rejected" not in by_id["r1"]["meta"]
    reasons = {r["id"]: r["meta"]["rejected"]["reason"] for r in dropped}
    assert reasons["s2"] == "wrong number" and reasons["s8"] == "outdated"
    assert set(reasons) == {"s2", "s4", "s6", "s8"}
    assert counts["rescued"] == 1 and counts["edited"] == 1
    seeds = [json.loads(line) for line in (workspace / "seeds.jsonl").read_text().splitlines()]
    assert [s["messages"][0]["content"] for s in seeds] == ["What colour is the buoy?"]


def test_seed_without_seeds_file_shows_an_error(workspace):
    async def main() -> list[tuple[str, str]]:
        session, store = _session(workspace, seeds=False)
        app = CurationApp(session)
        shown: list[tuple[str, str]] = []
        app.notify = lambda message, *a, severity="information", **k: shown.append((severity, str(message)))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause()
            await _fill_qa(pilot, app, "Q?", "A.")
            assert not isinstance(app.screen, QuestionAnswerScreen)
        store.close()
        return shown

    shown = asyncio.run(main())
    assert any(sev == "error" and "seeds" in msg for sev, msg in shown)


def test_modal_keys_do_not_reach_the_list_and_help_opens(workspace):
    async def main() -> None:
        session, store = _session(workspace)
        app = CurationApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("a")  # not an approval while the help is open
            await pilot.pause()
            assert session.state(session.by_id["s1"]) == "undecided"
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
            # the edit modal: Save with an empty answer is refused, Esc cancels
            await pilot.press("e")
            await pilot.pause()
            app.screen.query_one("#answer", TextArea).load_text("")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, QuestionAnswerScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert session.decision("s1") is None
            # undo with nothing to undo is harmless
            await pilot.press("u")
            await pilot.pause()
            # Esc leaves the filter for the list
            await pilot.press("slash")
            assert app.focused is app.query_one("#filter", Input)
            await pilot.press("escape")
            assert app.focused is app.query_one("#samples", DataTable)
        store.close()

    asyncio.run(main())


def test_long_lists_are_filtered_once_typing_pauses_or_on_enter(workspace, monkeypatch):
    import mason.curate.app as app_module

    monkeypatch.setattr(app_module, "IMMEDIATE_FILTER_MAX", 0)  # treat the 9 samples as a long list

    async def main() -> None:
        session, store = _session(workspace)
        app = CurationApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("slash")
            await _type(pilot, "doc:faq")
            await pilot.press("enter")
            await pilot.pause()
            assert [it.id for it in app.listed] == ["s5", "s6", "s7"]
            assert app.focused is app.query_one("#samples", DataTable)
        store.close()

    asyncio.run(main())


def test_detail_pane_highlights_the_answer_in_its_chunk(workspace):
    async def main() -> None:
        session, store = _session(workspace)
        app = CurationApp(session)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            chunk = app.query_one("#chunk", Static).content
            start = CHUNKS["c-manual"].index("Readings are taken")
            assert any(str(span.style) == HIGHLIGHT_STYLE and span.start == start for span in chunk.spans)
        store.close()

    asyncio.run(main())


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_screenshots_are_readable(workspace, size):
    async def main() -> str:
        session, store = _session(workspace)
        app = CurationApp(session)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            path = app.save_screenshot(filename=f"{size[0]}x{size[1]}.svg", path=str(workspace))
        store.close()
        return path

    path = Path(asyncio.run(main()))
    assert path.is_file()
    svg = html.unescape(path.read_text(encoding="utf-8")).replace("\xa0", " ")
    assert "How long does the battery last?" in svg  # the question under the cursor, in the list and the pane
    assert "approved 1 · rejected 0 · undecided 7" in svg
    assert "source chunk · manual.pdf · answer highlighted" in svg  # the source chunk's pane
    assert "The battery lasts" in svg  # the answer's longest shared run, highlighted in the chunk


def test_answer_spans():
    chunk = "The buoy measures five parameters. Readings are taken every 15 minutes by default."
    exact = answer_spans(chunk, "readings are TAKEN every 15 minutes")
    assert [chunk[a:b] for a, b in exact] == ["Readings are taken every 15 minutes"]
    # not verbatim: runs of >= 3 shared words, longest first
    runs = answer_spans(chunk, "It says the buoy measures five parameters, and that readings are taken hourly.")
    assert [chunk[a:b] for a, b in runs] == ["The buoy measures five parameters", "Readings are taken"]
    assert answer_spans(chunk, "nothing in common here at all") == []
    assert answer_spans(None, "x") == [] and answer_spans(chunk, "") == []
    text = highlighted(chunk, exact)
    assert text.plain == chunk and text.spans[0].style == HIGHLIGHT_STYLE
