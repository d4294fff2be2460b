"""The modal screens of the curation UI (`mason.curate.app`): a reason or confirmation prompt, a score
threshold, a question + answer editor (edits and new seed instructions) and the help screen.

Each one is dismissed with its result (None when cancelled with Esc), so the app decides what to do
with it; none of them touches the session itself.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea



def _modal_css(screen: str, *, max_width: int = 100, extra: str = "") -> str:
    """The CSS every modal shares (a bordered box in the middle of a dimmed screen), for `screen`."""
    return f"""
    {screen} {{
        align: center middle;
        background: $background 60%;
    }}
    {screen} > Vertical {{
        width: 90%;
        max-width: {max_width};
        height: auto;
        max-height: 100%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }}
    {screen} .title {{
        text-style: bold;
        width: 100%;
    }}
    {screen} .hint {{
        color: $text-muted;
        width: 100%;
    }}
    {screen} .problem {{
        color: $text-error;
        width: 100%;
        display: none;
    }}
    {screen} .problem.-shown {{
        display: block;
    }}
    {screen} Horizontal.buttons {{
        height: auto;
        align-horizontal: right;
    }}
    {screen} Horizontal.buttons .hint {{
        width: 1fr;
        padding-top: 1;
    }}
    {screen} Horizontal.buttons Button {{
        margin-left: 1;
    }}
    """ + extra


def _problem(label: Label, message: str) -> None:
    label.update(message)
    label.add_class("-shown")


class PromptScreen(ModalScreen[str | None]):
    """One line of text (a reject reason), or a confirmation with an optional reason.

    Dismissed with the text typed (possibly empty) on Enter, None on Esc.
    """

    DEFAULT_CSS = _modal_css("PromptScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, hint: str = "Enter confirms, Esc cancels", *, placeholder: str = "",
                 value: str = ""):
        super().__init__()
        self._title, self._hint, self._placeholder, self._value = title, hint, placeholder, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            yield Input(self._value, placeholder=self._placeholder, id="prompt")
            yield Label(self._hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ThresholdScreen(ModalScreen[float | None]):
    """A score threshold (a number); dismissed with it on Enter, None on Esc."""

    DEFAULT_CSS = _modal_css("ThresholdScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, hint: str, value: str = "7"):
        super().__init__()
        self._title, self._hint, self._value = title, hint, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            yield Input(self._value, placeholder="a score, e.g. 7", id="threshold")
            yield Label("", classes="problem", id="threshold-error")
            yield Label(self._hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one("#threshold", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = float(event.value.strip())
        except ValueError:
            _problem(self.query_one("#threshold-error", Label), f"not a number: {event.value!r}")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuestionAnswerScreen(ModalScreen[tuple[str, str] | None]):
    """Two text areas, question and answer; dismissed with both on ctrl+s or Save, None on Esc."""

    DEFAULT_CSS = _modal_css("QuestionAnswerScreen", max_width=120, extra="""
    QuestionAnswerScreen TextArea {
        height: auto;
        min-height: 3;
        max-height: 12;
    }
    QuestionAnswerScreen #question {
        max-height: 6;
    }
    """)
    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True), Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, question: str = "", answer: str = ""):
        super().__init__()
        self._title, self._question, self._answer = title, question, answer

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            yield Label("question", classes="hint")
            yield TextArea(self._question, id="question", soft_wrap=True, compact=True)
            yield Label("answer", classes="hint")
            yield TextArea(self._answer, id="answer", soft_wrap=True, compact=True)
            yield Label("", classes="problem", id="qa-error")
            with Horizontal(classes="buttons"):
                yield Label("ctrl+s saves · Esc cancels", classes="hint")
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#question", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        question = self.query_one("#question", TextArea).text.strip()
        answer = self.query_one("#answer", TextArea).text.strip()
        if not question or not answer:
            _problem(self.query_one("#qa-error", Label), "both a question and an answer are needed")
            return
        self.dismiss((question, answer))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """The keys and the filter language; any of Esc, q, ? closes it."""

    DEFAULT_CSS = _modal_css("HelpScreen", max_width=90, extra="""
    HelpScreen > Vertical {
        height: 90%;
    }
    HelpScreen VerticalScroll {
        height: 1fr;
    }
    """)
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("MASON curation: keys and filter", classes="title")
            with VerticalScroll():
                yield Static(self._text, id="help-text")
            yield Label("Esc, q or ? closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
