"""`mason chat`: talk to any model MASON writes or reads, and log the conversations as training data.

    from mason.chat import ChatSession, ChatLogger
    from mason.runtime import open_runtime, GenerationParams
    session = ChatSession(open_runtime("out/train/merged"), GenerationParams(), logger=ChatLogger("chat.jsonl"))
    answer = "".join(session.reply("What holds bricks together?"))

Importing this package imports neither torch nor transformers.
"""

from mason.chat.log import ChatLogger, chat_row
from mason.chat.session import ChatSession, run_repl, stats_line, stream_answer

__all__ = ["ChatLogger", "ChatSession", "chat_row", "run_repl", "stats_line", "stream_answer"]
