"""Webhook subscriptions and deliveries (placeholder until delivery lands)."""
from __future__ import annotations


class Webhooks:
    def __init__(self, core):
        self.core = core

    def deliveries(self) -> list:
        return []

    def close(self) -> None:
        pass
