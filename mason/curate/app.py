"""The curation UI: a terminal app (Textual) in which a person vets the generated samples before training.

    with pipeline.curation() as session:
        CurationApp(session).run()

A filter line (the session's filter language, applied as you type), the list of samples, and beside it
(below it on narrow terminals) the sample under the cursor: question and answer as edited, the decision,
why generation rejected it (rejected pool), and its source chunk with the answer highlighted. Every key
calls the session at once, so every decision is on disk the moment it is made; quitting loses nothing.
The modal screens are in `mason.curate.screens`. Textual is imported only when this module is.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from mason.core.errors import InputError
from mason.curate.highlight import answer_spans, highlighted
from mason.curate.screens import HelpScreen, PromptScreen, QuestionAnswerScreen, ThresholdScreen
from mason.curate.session import CurationSession, Item, answer_of, question_of

FILTER_PLACEHOLDER = "filter: doc:manual task:qa score>=7 undecided  free text"
REJECTED_POOL = "pool:rejected"
QUESTION_CHARS = 120
IMMEDIATE_FILTER_MAX = 800  # longer lists are filtered once the typing pauses for FILTER_DELAY_S
FILTER_DELAY_S = 0.25
MARKS = {"approved": ("✓", "bold green"), "rejected": ("✗", "bold red"), "undecided": ("·", "dim")}

HELP = """\
[b]Keys[/b]
  a    approve (in the rejected pool: rescue it)
  r    reject (asks for an optional reason)
  e    edit question and answer (ctrl+s saves, Esc cancels)
  x    reset to undecided
  u    undo the last change (any sample)
  A    approve the list's undecided samples scoring >= N
  D    reject every sample of this sample's document
  s    write a new seed instruction (used by the next generate)
  p    show the rejected pool only / everything
  /    go to the filter (Enter or Esc: back to the list)
  ?    this help
  q    quit (every decision is already saved)
  ↑ ↓ PgUp PgDn ctrl+Home ctrl+End: move in the list

[b]List marks[/b]
  ✓ approved  ✗ rejected  · undecided  ✎ edited
  R generation rejected it (approve it to rescue it)

[b]Filter[/b] (every term must hold; applied as you type)
  doc:TEXT      the document's name contains TEXT
  task:TEXT     the generation task contains TEXT
  reason:TEXT   generation's or the reviewer's reject reason
  split:train   split:eval   pool:dataset   pool:rejected
  approved  rejected  undecided  edited
  score>=7  score<5  (also > <= =)  judge score 0-10,
                or 10 x the quality heuristic without a judge
  other words   search the question and the answer
"""


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class CurationApp(App[None]):
    """Review, edit, approve and reject generated samples; every action is saved by the session at once."""

    CSS = """
    Screen {
        layout: vertical;
    }
    #top {
        height: 1;
    }
    #filter {
        width: 1fr;
    }
    #listed {
        width: auto;
        padding: 0 1;
        color: $text-muted;
    }
    #body {
        height: 1fr;
    }
    #samples {
        overflow-x: hidden;
    }
    #detail {
        padding: 0 1;
    }
    #sample-scroll {
        height: auto;
        max-height: 60%;
    }
    #chunk-scroll {
        height: 1fr;
        border-top: solid $accent;
        border-title-color: $text-muted;
    }
    #status {
        height: 1;
        background: $boost;
    }
    #counts {
        width: 1fr;
        padding: 0 1;
    }
    #title {
        width: auto;
        padding: 0 1;
        color: $text-muted;
    }
    Screen.-narrow #title {
        display: none;
    }
    /* narrow terminals: the list above the sample */
    Screen.-narrow #body {
        layout: vertical;
    }
    Screen.-narrow #samples {
        height: 40%;
        min-height: 5;
    }
    Screen.-narrow #detail {
        height: 1fr;
        border-top: solid $primary;
    }
    Screen.-narrow #sample-scroll {
        max-height: 60%;
    }
    /* wide terminals: side by side */
    Screen.-wide #body {
        layout: horizontal;
    }
    Screen.-wide #samples {
        width: 11fr;
        height: 100%;
    }
    Screen.-wide #detail {
        width: 9fr;
        height: 100%;
        border-left: solid $primary;
    }
    """
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("r", "reject", "Reject"),
        Binding("e", "edit", "Edit"),
        Binding("u", "undo", "Undo"),
        Binding("x", "reset", "Reset", show=False),
        Binding("A", "approve_above", "Approve ≥score", show=False),
        Binding("D", "reject_document", "Reject doc", show=False),
        Binding("s", "seed", "Seed"),
        Binding("p", "toggle_pool", "Rej. pool"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    _OWN_ACTIONS = frozenset(b.action for b in BINDINGS)

    def __init__(self, session: CurationSession, *, title: str = "MASON curation"):
        super().__init__()
        self.session = session
        self.title = title
        self.listed: list[Item] = []  # the items of the list, in its order
        self._row_of: dict[str, int] = {}  # item id -> row index in the list
        self._query: str | None = None
        self._spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._shown: str | None = None  # id of the item in the detail pane
        self._filter_timer: Timer | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Input(placeholder=FILTER_PLACEHOLDER, id="filter", compact=True)
            yield Static(id="listed")
        with Horizontal(id="body"):
            table: DataTable[Any] = DataTable(id="samples", cursor_type="row", zebra_stripes=True)
            yield table
            with Vertical(id="detail"):
                with VerticalScroll(id="sample-scroll"):
                    yield Static(id="sample")
                with VerticalScroll(id="chunk-scroll"):
                    yield Static(id="chunk")
        with Horizontal(id="status"):
            yield Static(id="counts")
            yield Static(self.title, id="title")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#samples", DataTable)
        table.add_column("", key="mark", width=3)
        table.add_column("score", key="score", width=5)
        table.add_column("task", key="task", width=10)
        table.add_column("doc", key="doc", width=14)
        table.add_column("question", key="question", width=QUESTION_CHARS)
        self.apply_filter("")
        if not self.listed:  # nothing to list: apply_filter left the panes as they were
            self.show_detail(None)
            self._update_counts()
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The list's keys do nothing while a modal screen (a prompt, the editor, the help) is open."""
        if action in self._OWN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        return True

    # ------------------------------------------------------------------ the list

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#samples", DataTable)

    def _mark(self, item: Item) -> Text:
        symbol, style = MARKS[self.session.state(item)]
        decision = self.session.decision(item.id)
        text = Text()
        text.append("R" if item.pool == "rejected" else " ", style="bold magenta")
        text.append(symbol, style=style)
        text.append("✎" if decision is not None and decision.edited is not None else " ", style="yellow")
        return text

    def _cells(self, item: Item) -> tuple[Any, ...]:
        score = Text("–" if item.score is None else f"{item.score:.1f}", justify="right")
        return (self._mark(item), score, Text(_cut(item.task, 10)), Text(_cut(item.doc, 14)),
                Text(_cut(question_of(self.session.current(item)), QUESTION_CHARS)))

    def apply_filter(self, query: str) -> None:
        """Show the items matching `query`; the list is rebuilt only when they changed."""
        query = query.strip()
        if query == self._query:
            return
        self._query = query
        items = self.session.filter(query)
        if [it.id for it in items] == [it.id for it in self.listed]:
            return
        keep = self.current_item()
        table = self.table
        table.clear()
        self.listed = items
        self._row_of = {it.id: i for i, it in enumerate(items)}
        for item in items:
            table.add_row(*self._cells(item), key=item.id)
        if keep is not None and keep.id in self._row_of:
            table.move_cursor(row=self._row_of[keep.id], animate=False)
        self.show_detail(self.current_item())
        self._update_counts()

    def current_item(self) -> Item | None:
        row = self.table.cursor_row if self.listed else -1
        return self.listed[row] if 0 <= row < len(self.listed) else None

    def refresh_item(self, item: Item) -> None:
        """Redraw the row of `item` (if listed) and the detail pane if it shows it."""
        row = self._row_of.get(item.id)
        if row is not None:
            mark, _, _, _, question = self._cells(item)
            self.table.update_cell(item.id, "mark", mark)
            self.table.update_cell(item.id, "question", question)
        if self._shown == item.id:
            self.show_detail(item)

    def _next_row(self) -> None:
        table = self.table
        if table.cursor_row < len(self.listed) - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)

    def _update_counts(self) -> None:
        c = self.session.counts()
        line = (f"approved {c['approved']} · rejected {c['rejected']} · undecided {c['undecided']} · "
                f"edited {c['edited']} · rescued {c['rescued']} · seeded {c['seeded']}")
        if c.get("stale"):
            line += f" · stale {c['stale']}"
        self.query_one("#counts", Static).update(line)
        self.query_one("#listed", Static).update(f"{len(self.listed)}/{len(self.session.items)} listed")

    # ------------------------------------------------------------------ the detail pane

    def show_detail(self, item: Item | None) -> None:
        sample, chunk = self.query_one("#sample", Static), self.query_one("#chunk", Static)
        scroll = self.query_one("#chunk-scroll", VerticalScroll)
        self._shown = item.id if item else None
        if item is None:
            sample.update(Text("no sample matches the filter", style="dim"))
            chunk.update("")
            scroll.border_title = "source chunk"
            return
        session = self.session
        row = session.current(item)
        answer = answer_of(row)
        text = Text()
        state = session.state(item)
        symbol, style = MARKS[state]
        decision = session.decision(item.id)
        text.append(f"{symbol} {state}", style=style)
        if decision is not None:
            if decision.reason:
                text.append(f": {decision.reason}", style=style)
            if decision.edited is not None:
                text.append(" · ✎ edited", style="yellow")
            text.append(f" · {decision.who} {decision.at.replace('T', ' ')[:16]}", style="dim")
        text.append(f"  │ {item.task} · {item.split} · {item.id[:8]}\n", style="dim")
        if item.pool == "rejected":
            text.append("R rejected by generation", style="bold magenta")
            if item.generation_reason:
                text.append(f": {item.generation_reason}", style="magenta")
            text.append(" (a rescues it)\n" if state != "approved" else " · rescued\n", style="dim")
        text.append("Q ", style="bold cyan")
        text.append(question_of(row) + "\n", style="bold")
        text.append("A ", style="bold cyan")
        text.append(answer)
        sample.update(text)
        self.query_one("#sample-scroll", VerticalScroll).scroll_home(animate=False)
        if item.chunk is None:
            scroll.border_title = "source chunk: not available"
            chunk.update(Text("the ingest artifact has no text for this sample's chunk", style="dim"))
            return
        key = (item.id, answer)
        if key not in self._spans:
            self._spans[key] = answer_spans(item.chunk, answer)
        spans = self._spans[key]
        found = "answer highlighted" if spans else "answer not found verbatim"
        scroll.border_title = f"source chunk · {item.doc} · {found}"
        chunk.update(highlighted(item.chunk, spans))
        first = spans[0][0] if spans else 0
        self.call_after_refresh(self._scroll_chunk_to, item.chunk, first)

    def _scroll_chunk_to(self, chunk: str, offset: int) -> None:
        """Scroll the chunk so that the first highlighted span is near the top."""
        scroll = self.query_one("#chunk-scroll", VerticalScroll)
        width = max(10, scroll.scrollable_content_region.width)
        line = len(Text(chunk[:offset]).wrap(self.console, width)) - 1 if offset else 0
        scroll.scroll_to(y=max(0, line - 1), animate=False)

    # ------------------------------------------------------------------ events

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        if len(self.session.items) <= IMMEDIATE_FILTER_MAX:
            self.apply_filter(event.value)
        else:  # rebuilding a list of thousands takes a moment: wait until the typing pauses
            self._filter_timer = self.set_timer(FILTER_DELAY_S, self._filter_from_input)

    def _filter_from_input(self) -> None:
        self._filter_timer = None
        self.apply_filter(self.query_one("#filter", Input).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if self._filter_timer is not None:
                self._filter_timer.stop()
            self._filter_from_input()
            self.table.focus()

    def on_key(self, event: Any) -> None:
        if event.key == "escape" and self.focused is self.query_one("#filter", Input):
            event.stop()
            self.table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        item = self.current_item()
        if item is not None and item.id != self._shown:
            self.show_detail(item)

    # ------------------------------------------------------------------ actions

    def action_approve(self) -> None:
        item = self.current_item()
        if item is None:
            return
        self.session.approve(item.id)
        if item.pool == "rejected":
            self.notify("rescued: it goes into the curated dataset", timeout=3)
        self._decided(item)

    def action_reject(self) -> None:
        item = self.current_item()
        if item is None:
            return

        def done(reason: str | None) -> None:
            if reason is None:
                return
            self.session.reject(item.id, reason or None)
            self._decided(item)

        self.push_screen(PromptScreen(f"Reject: {_cut(question_of(self.session.current(item)), 70)}",
                                      "reason (optional) · Enter rejects · Esc cancels",
                                      placeholder="why? e.g. wrong number, not in the document"), done)

    def _decided(self, item: Item) -> None:
        self.refresh_item(item)
        self._update_counts()
        self._next_row()

    def action_reset(self) -> None:
        item = self.current_item()
        if item is None:
            return
        self.session.reset(item.id)
        self.refresh_item(item)
        self._update_counts()

    def action_edit(self) -> None:
        item = self.current_item()
        if item is None:
            return
        row = self.session.current(item)

        def done(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            self.session.edit(item.id, *result)
            self.refresh_item(item)
            self._update_counts()
            self.notify("edited (the original is kept in the decisions file)", timeout=3)

        self.push_screen(QuestionAnswerScreen(f"Edit {item.id[:10]} ({item.doc})", question_of(row), answer_of(row)),
                         done)

    def action_undo(self) -> None:
        sample_id = self.session.undo()
        if sample_id is None:
            self.notify("nothing to undo", severity="warning", timeout=3)
            return
        item = self.session.by_id.get(sample_id)
        if item is not None:
            self.refresh_item(item)
            if sample_id in self._row_of:
                self.table.move_cursor(row=self._row_of[sample_id], animate=False)
        self._update_counts()
        state = self.session.state(item) if item is not None else "undecided"
        self.notify(f"undone: {sample_id[:10]} is {state} again", timeout=3)

    def action_approve_above(self) -> None:
        pending = [it for it in self.listed if it.pool == "dataset" and self.session.state(it) == "undecided"]

        def done(threshold: float | None) -> None:
            if threshold is None:
                return
            n = self.session.approve_above(threshold, items=list(self.listed))
            for item in self.listed:
                self.refresh_item(item)
            self._update_counts()
            self.notify(f"approved {n} sample(s) scoring >= {threshold:g}", timeout=4)

        self.push_screen(ThresholdScreen(
            "Approve every undecided sample of the list scoring at least:",
            f"{len(pending)} undecided in the list (rejected pool excluded) · Enter approves · Esc cancels"), done)

    def action_reject_document(self) -> None:
        item = self.current_item()
        if item is None:
            return
        doc = item.doc
        n = sum(1 for it in self.session.items
                if it.pool == "dataset" and it.doc == doc and self.session.state(it) != "rejected")

        def done(reason: str | None) -> None:
            if reason is None:
                return
            rejected = self.session.reject_document(doc, reason or None)
            for it in self.listed:
                if it.doc == doc:
                    self.refresh_item(it)
            self._update_counts()
            self.notify(f"rejected {rejected} sample(s) of {doc}", timeout=4)

        self.push_screen(PromptScreen(f"Reject all {n} remaining sample(s) of {doc}?",
                                      "reason (optional) · Enter rejects the document · Esc cancels",
                                      placeholder="why? e.g. outdated document"), done)

    def action_seed(self) -> None:
        def done(result: tuple[str, str] | None) -> None:
            if result is None:
                return
            try:
                self.session.add_seed(*result)
            except InputError as e:
                self.notify(str(e), title="seed not added", severity="error", timeout=6)
                return
            self.notify(f"seed added to {self.session.seeds_path} (the next generate run uses it)", timeout=4)

        self.push_screen(QuestionAnswerScreen("New seed instruction: an example question and its ideal answer"), done)

    def action_toggle_pool(self) -> None:
        box = self.query_one("#filter", Input)
        terms = box.value.split()
        if REJECTED_POOL in (t.lower() for t in terms):
            terms = [t for t in terms if t.lower() != REJECTED_POOL]
        else:
            terms.append(REJECTED_POOL)
        box.value = " ".join(terms)
        self.apply_filter(box.value)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(HELP))
