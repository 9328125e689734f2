"""Mail: a `Message`, the `Sender` backends (a file per message, or Resend), the
outbox that delivers messages written in the same transaction as the action behind them, and
the templates of the messages the gateway sends."""

from .message import Message, MessageKind
from .outbox import enqueue
from .sender import Sender, SendFailed, SendThrottled

__all__ = ["Message", "MessageKind", "SendFailed", "SendThrottled", "Sender", "enqueue"]
