"""Payments and refunds: never more than what is outstanding, a test card that declines, and the
work order's paid amount and balance refreshed on every change."""
from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..money import cents, dollars
from ..records import build_payment
from .validation import field_error, only_fields, opt_str, req_amount, req_int

DECLINE_TEST_CARD = "4000000000000002"
PAYMENT_METHODS = ("card", "cash", "check", "text_to_pay")


class PaymentsMixin:
    def _index_payment(self, p: dict) -> None:
        shop = p["shop_id"]
        if p["status"] == "pending":
            self.pending_payments[shop].add(p["id"])
        else:
            self.pending_payments[shop].discard(p["id"])
        if p["status"] == "succeeded" and cents(p["refunded_amount"]) < cents(p["amount"]):
            self.refundable[shop].add(p["id"])
        else:
            self.refundable[shop].discard(p["id"])

    def payments_of(self, wo_id: int) -> list[dict]:
        latest = self.store.latest
        return [p for p in (latest("payments", pid) for pid in self.payments_of_wo.get(wo_id, ())) if p is not None]

    def outstanding_cents(self, wo: dict) -> int:
        """What can still be charged: total - net paid - pending charges."""
        pending = sum(cents(p["amount"]) for p in self.payments_of(wo["id"]) if p["status"] == "pending")
        return cents(wo["total"]) - cents(wo["amount_paid"]) - pending

    def pending_payment_ids(self, shop_id: int):
        return self.pending_payments[shop_id]

    def refundable_payment_ids(self, shop_id: int):
        return self.refundable[shop_id]

    def unpaid_work_order_ids(self, shop_id: int):
        """Completed or invoiced work orders with something left to charge, by id."""
        return self.unpaid[shop_id]

    # -------------------------------------------------------------- payments
    PAYMENT_FIELDS = {"work_order_id", "amount", "method", "card_number", "card_brand"}

    def create_payment(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.PAYMENT_FIELDS)
        wo = self.owned("work_orders", shop_id, req_int(body, "work_order_id"), "work_order_id")
        amount = req_amount(body, "amount", 1, 10**10)
        method = body.get("method")
        if method not in ("card", "cash", "check", "text_to_pay"):
            raise field_error("method", "The 'method' field must be one of card, cash, check, text_to_pay.")
        if wo["status"] == "draft":
            raise ApiError(409, "conflict", f"Work order {wo['id']} is a draft; it cannot take payments yet.")
        outstanding = self.outstanding_cents(wo)
        if amount > outstanding:
            raise field_error("amount", f"The amount exceeds what is outstanding on the work order ({dollars(max(0, outstanding)):.2f}).")
        status = {"card": "succeeded", "cash": "succeeded", "check": "succeeded", "text_to_pay": "pending"}[method]
        card_number = opt_str(body, "card_number", 19)
        if method == "card" and card_number is not None:
            digits = card_number.replace(" ", "")
            if not digits.isdigit() or not 12 <= len(digits) <= 19:
                raise field_error("card_number", "The 'card_number' field must be 12-19 digits.")
            if digits == DECLINE_TEST_CARD:
                status = "failed"
        pay = build_payment(self.write_rng, self.ids.next("payments"), shop_id, wo["id"], amount, method, status, self.clock)
        if method == "card" and card_number is not None:
            pay["last4"] = card_number.replace(" ", "")[-4:]
            pay["card_brand"] = "visa" if card_number.startswith("4") else pay["card_brand"]
        self._store_payment(None, pay)
        return pay

    def _store_payment(self, old: dict | None, pay: dict) -> None:
        if old is None:
            self.payments_of_wo.setdefault(pay["work_order_id"], []).append(pay["id"])
        self.store.put("payments", pay)
        self._index_payment(pay)
        wo = self.refresh_work_order_money(pay["work_order_id"])
        if pay["status"] == "succeeded" and (old is None or old["status"] != "succeeded"):
            self.emit("payment.received", "payments", pay)
        self.emit("workorder.updated", "work_orders", wo)

    def settle_payment(self, pay: dict, status: str) -> dict:
        new = {**pay, "status": status, "updated_at": self.now_iso()}
        self._store_payment(pay, new)
        return new

    def refund(self, shop_id: int, pid: int, body: Any) -> dict:
        body = only_fields(body, {"amount", "reason"})
        pay = self.owned("payments", shop_id, pid)
        if pay["status"] != "succeeded":
            raise ApiError(409, "conflict", f"Payment {pid} is {pay['status']}; only succeeded payments can be refunded.")
        remaining = cents(pay["amount"]) - cents(pay["refunded_amount"])
        amount = req_amount(body, "amount", 1, 10**10) if body.get("amount") is not None else remaining
        if amount > remaining or remaining <= 0:
            raise field_error("amount", f"The refund exceeds what remains refundable ({dollars(remaining):.2f}).")
        reason = opt_str(body, "reason", 200) or "customer_request"
        return self.add_refund(pay, amount, reason)

    def add_refund(self, pay: dict, amount_c: int, reason: str) -> dict:
        refund = {"id": self.ids.next("refunds"), "amount": dollars(amount_c), "reason": reason, "created_at": self.now_iso()}
        new = {**pay, "refunds": [*pay["refunds"], refund],
               "refunded_amount": dollars(cents(pay["refunded_amount"]) + amount_c), "updated_at": self.now_iso()}
        self.store.put("payments", new)
        self._index_payment(new)
        wo = self.refresh_work_order_money(pay["work_order_id"])
        self.emit("payment.refunded", "payments", new)
        self.emit("workorder.updated", "work_orders", wo)
        return refund
