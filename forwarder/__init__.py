"""Forwards what appears in Telegram chats to other chats, live, exactly once."""

__version__ = "0.1.0"
