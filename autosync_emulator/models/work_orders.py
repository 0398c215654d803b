"""Work orders: money kept consistent on every save, creation with jobs and line items, the status
flow with what each step implies for jobs and inspections, and new drafts from activity."""
from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..money import cents, compute_job_totals, compute_work_order_totals, dollars, quantity_total_cents
from ..records import ShopContext, build_job, fee_line, labor_line, part_line
from ..vocabulary import BASE_JOBS, WO_NOTES
from .validation import field_error, only_fields, opt_amount, opt_bool, opt_int, opt_str, req_amount, req_int, req_str

WO_FLOW = {"draft": ("in_progress",), "in_progress": ("waiting_parts", "completed"),
           "waiting_parts": ("in_progress", "completed"), "completed": ("invoiced",), "invoiced": ()}
LINE_FIELDS = {"type", "description", "technician_id", "hours", "rate", "part_id", "quantity", "unit_price", "taxable"}
JOB_FIELDS = {"name", "technician_id", "line_items"}


class WorkOrdersMixin:
    def _index_wo(self, old: dict | None, new: dict | None) -> None:
        ref = new or old
        by_status = self.wo_by_status[ref["shop_id"]]
        if old is not None and old["status"] in by_status:
            by_status[old["status"]].discard(old["id"])
        if new is not None and new["status"] in by_status:
            by_status[new["status"]].add(new["id"])
        unpaid = self.unpaid[ref["shop_id"]]
        if new is not None and new["status"] in ("completed", "invoiced") and self.outstanding_cents(new) > 0:
            unpaid.add(new["id"])
        else:
            unpaid.discard(ref["id"])

    # -------------------------------------------------------------- work-order money
    def save_work_order(self, wo: dict, touched: bool = True) -> dict:
        """Recompute the money of a (fresh) work-order dict and store it."""
        old = self.store.latest("work_orders", wo["id"])
        compute_work_order_totals(wo, self.ctx(wo["shop_id"]).tax_rate_k, self.payments_of(wo["id"]))
        if touched:
            wo["updated_at"] = self.now_iso()
        self.store.put("work_orders", wo)
        self._index_wo(old, wo)
        return wo

    def refresh_work_order_money(self, wo_id: int) -> dict:
        return self.save_work_order(dict(self.store.latest("work_orders", wo_id)))

    def _non_failed_net_c(self, wo_id: int) -> int:
        return sum(cents(p["amount"]) - cents(p["refunded_amount"])
                   for p in self.payments_of(wo_id) if p["status"] != "failed")

    def _total_if(self, wo: dict, jobs: list[dict]) -> int:
        probe = {**wo, "jobs": jobs}
        compute_work_order_totals(probe, self.ctx(wo["shop_id"]).tax_rate_k, [])
        return cents(probe["total"])

    # -------------------------------------------------------------- work orders
    WO_FIELDS = {"customer_id", "vehicle_id", "technician_id", "service_advisor_id", "notes", "mileage_in", "jobs"}
    def create_work_order(self, shop_id: int, body: Any) -> dict:
        body = only_fields(body, self.WO_FIELDS)
        customer = self.owned("customers", shop_id, req_int(body, "customer_id"), "customer_id")
        vehicle = self.owned("vehicles", shop_id, req_int(body, "vehicle_id"), "vehicle_id")
        if vehicle["customer_id"] != customer["id"]:
            raise field_error("vehicle_id", f"Vehicle {vehicle['id']} does not belong to customer {customer['id']}.")
        tech = self._employee(shop_id, body, "technician_id", "technician")
        advisor = self._employee(shop_id, body, "service_advisor_id", "service_advisor")
        mileage = opt_int(body, "mileage_in", 0, 5_000_000)
        jobs_body = body.get("jobs")
        jobs_body = [] if jobs_body is None else jobs_body
        if not isinstance(jobs_body, list) or len(jobs_body) > 50:
            raise field_error("jobs", "The 'jobs' field must be a list of at most 50 jobs.")
        wo_id = self.ids.last["work_orders"] + 1
        jobs = [self._job_from_body(shop_id, wo_id, job, tech, f"jobs[{i}]") for i, job in enumerate(jobs_body)]
        self.ids.next("work_orders")
        number = self.next_number[shop_id]
        self.next_number[shop_id] += 1
        stamp = self.now_iso()
        wo = {"id": wo_id, "shop_id": shop_id, "number": number, "customer_id": customer["id"],
              "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": advisor,
              "status": "draft", "notes": opt_str(body, "notes", 2000),
              "mileage_in": mileage if mileage is not None else vehicle["mileage"],
              "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0, "tax_total": 0.0,
              "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0, "started_at": None, "completed_at": None,
              "invoiced_at": None, "created_at": stamp, "updated_at": stamp, "jobs": jobs}
        self.wo_count_of_customer[customer["id"]] = self.wo_count_of_customer.get(customer["id"], 0) + 1
        self.save_work_order(wo)
        self.emit("workorder.created", "work_orders", wo)
        return wo

    def _job_from_body(self, shop_id: int, wo_id: int, body: Any, default_tech: int | None, where: str) -> dict:
        if not isinstance(body, dict) or set(body) - {"name", "technician_id", "line_items"}:
            raise field_error(where, f"'{where}' must be an object with name, technician_id?, line_items?.")
        name = req_str(body, "name", 200)
        tech = self._employee(shop_id, body, "technician_id", "technician") or default_tech
        lines_body = body.get("line_items")
        lines_body = [] if lines_body is None else lines_body
        if not isinstance(lines_body, list) or len(lines_body) > 100:
            raise field_error(f"{where}.line_items", "line_items must be a list of at most 100 items.")
        ctx = self.ctx(shop_id)
        job_id = self.ids.last["jobs"] + 1
        lines = []
        next_line = self.ids.last["line_items"]
        for i, line in enumerate(lines_body):
            next_line += 1
            lines.append(self._line_from_body(shop_id, ctx, job_id, next_line, line, tech, f"{where}.line_items[{i}]"))
        self.ids.last["jobs"] = job_id
        self.ids.last["line_items"] = next_line
        job = {"id": job_id, "work_order_id": wo_id, "name": name, "technician_id": tech, "status": "pending",
               "approved_at": None, "labor_total": 0.0, "parts_total": 0.0, "total": 0.0, "line_items": lines}
        compute_job_totals(job)
        return job

    def _line_from_body(self, shop_id: int, ctx: ShopContext, job_id: int, line_id: int, body: Any,
                        tech: int | None, where: str) -> dict:
        if not isinstance(body, dict):
            raise field_error(where, f"'{where}' must be an object.")
        allowed = {"type", "description", "technician_id", "hours", "rate", "part_id", "quantity", "unit_price", "taxable"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise field_error(f"{where}.{unknown[0]}", f"Unknown field '{unknown[0]}'.")
        kind = body.get("type")
        taxable = opt_bool(body, "taxable")
        if kind == "labor":
            hours = req_amount(body, "hours", 1, 100_00)
            rate = opt_amount(body, "rate", 0, 10_000_00)
            line_tech = self._employee(shop_id, body, "technician_id", "technician") or tech
            desc = opt_str(body, "description", 500) or "Labor"
            return labor_line(line_id, job_id, desc, line_tech, hours, ctx.labor_rate_c if rate is None else rate,
                              ctx.tax_labor if taxable is None else taxable)
        if kind == "part":
            part = self.owned("inventory", shop_id, req_int(body, "part_id"), f"{where}.part_id")
            qty = req_amount(body, "quantity", 1, 10_000_00)
            line = part_line(line_id, job_id, part, qty)
            price = opt_amount(body, "unit_price", 0, 1_000_000_00)
            if price is not None:
                line["unit_price"] = dollars(price)
                line["total"] = dollars(quantity_total_cents(qty, price))
            if taxable is not None:
                line["taxable"] = taxable
            if body.get("description") is not None:
                line["description"] = opt_str(body, "description", 500)
            return line
        if kind == "fee":
            price = req_amount(body, "unit_price", 0, 1_000_000_00)
            qty = opt_amount(body, "quantity", 1, 10_000_00)
            desc = opt_str(body, "description", 500) or "Fee"
            line = fee_line(line_id, job_id, desc, price, True if taxable is None else taxable)
            if qty is not None and qty != 100:
                line["quantity"] = qty / 100
                line["total"] = dollars(quantity_total_cents(qty, price))
            return line
        raise field_error(f"{where}.type", "A line item's type must be labor, part or fee.")

    def update_work_order(self, shop_id: int, wid: int, body: Any) -> dict:
        body = only_fields(body, {"technician_id", "service_advisor_id", "notes", "mileage_in"})
        old = self.owned("work_orders", shop_id, wid)
        changes: dict[str, Any] = {}
        if "technician_id" in body:
            changes["technician_id"] = self._employee(shop_id, body, "technician_id", "technician")
        if "service_advisor_id" in body:
            changes["service_advisor_id"] = self._employee(shop_id, body, "service_advisor_id", "service_advisor")
        if "notes" in body:
            changes["notes"] = opt_str(body, "notes", 2000)
        if "mileage_in" in body:
            changes["mileage_in"] = opt_int(body, "mileage_in", 0, 5_000_000)
        if not changes:
            return old
        wo = self.save_work_order({**old, **changes})
        self.emit("workorder.updated", "work_orders", wo)
        return wo

    def add_job(self, shop_id: int, wid: int, body: Any) -> dict:
        old = self.owned("work_orders", shop_id, wid)
        if old["status"] in ("completed", "invoiced"):
            raise ApiError(409, "conflict", f"Work order {wid} is {old['status']}; jobs can no longer be added.")
        job = self._job_from_body(shop_id, wid, body, old["technician_id"], "job")
        wo = self.save_work_order({**old, "jobs": [*old["jobs"], job]})
        self.emit("workorder.updated", "work_orders", wo)
        return job

    def set_status(self, shop_id: int, wid: int, body: Any) -> dict:
        body = only_fields(body, {"status"})
        status = body.get("status")
        if not isinstance(status, str) or status not in WO_FLOW:
            raise field_error("status", f"The 'status' field must be one of {', '.join(WO_FLOW)}.")
        old = self.owned("work_orders", shop_id, wid)
        if status == old["status"]:
            return old
        if status not in WO_FLOW[old["status"]]:
            raise ApiError(409, "conflict", f"A work order cannot go from {old['status']} to {status}.", "status")
        return self.transition(old, status, self.write_rng)

    def transition(self, old: dict, status: str, rng) -> dict:
        """Move a work order along its flow, with the job and inspection changes that implies."""
        now = self.now_iso()
        wo = {**old, "status": status}
        if status == "in_progress" and old["started_at"] is None:
            wo["started_at"] = now
            linked = self._linked_jobs(old["id"])
            wo["jobs"] = [({**j, "status": "approved", "approved_at": now} if j["status"] == "pending" and j["id"] not in linked else j)
                          for j in old["jobs"]]
        if status == "completed":
            self._settle_pending(wo, rng)
            wo = {**self.store.latest("work_orders", old["id"]), "status": "completed", "completed_at": now}
            wo["jobs"] = [({**j, "status": "completed"} if j["status"] == "approved" else j) for j in wo["jobs"]]
        if status == "invoiced":
            wo["invoiced_at"] = now
        wo = self.save_work_order(wo)
        event = {"completed": "workorder.completed", "invoiced": "workorder.invoiced"}.get(status, "workorder.updated")
        self.emit(event, "work_orders", wo)
        return wo

    def _linked_jobs(self, wo_id: int) -> set[int]:
        iid = self.inspection_of_wo.get(wo_id)
        if iid is None:
            return set()
        insp = self.store.latest("inspections", iid)
        return {it["job_id"] for it in insp["items"] if it["job_id"] is not None}

    def _settle_pending(self, wo: dict, rng) -> None:
        """Before completion every job is decided: answer the inspection, approve the rest."""
        iid = self.inspection_of_wo.get(wo["id"])
        if iid is not None:
            insp = self.store.latest("inspections", iid)
            if insp["status"] == "in_progress":
                self.send_inspection(insp)
                insp = self.store.latest("inspections", iid)
            if insp["status"] == "sent" or any(it["approval"] == "pending" for it in insp["items"]):
                self.respond_inspection(insp, rng, decide_all=True)
        current = self.store.latest("work_orders", wo["id"])
        now = self.now_iso()
        if any(j["status"] == "pending" for j in current["jobs"]):
            jobs = [({**j, "status": "approved", "approved_at": now} if j["status"] == "pending" else j) for j in current["jobs"]]
            self.save_work_order({**current, "jobs": jobs})

    def new_work_order(self, shop_id: int, rng) -> dict | None:
        ctx = self.ctx(shop_id)
        # recent and returning customers alike: a random vehicle of this shop
        candidates = self.object_ids(shop_id, "vehicles")
        if not len(candidates):
            return None
        for _ in range(5):
            vid = candidates[rng.randrange(len(candidates))]
            vehicle = self.store.latest("vehicles", vid)
            if vehicle is not None:
                break
        else:
            return None
        wo_id = self.ids.next("work_orders")
        tech = rng.choice(ctx.technicians)
        jobs = [build_job(rng, self.ids, ctx, wo_id, name, tech, "pending", None, ctx.tax_labor, rng.random() < 0.3)
                for name in rng.sample(BASE_JOBS, rng.choice((1, 1, 2)))]
        number = self.next_number[shop_id]
        self.next_number[shop_id] += 1
        stamp = self.now_iso()
        wo = {"id": wo_id, "shop_id": shop_id, "number": number, "customer_id": vehicle["customer_id"],
              "vehicle_id": vehicle["id"], "technician_id": tech, "service_advisor_id": rng.choice(ctx.advisors),
              "status": "draft", "notes": rng.choice(WO_NOTES) or None, "mileage_in": (vehicle["mileage"] or 0) + rng.randint(0, 4000),
              "labor_total": 0.0, "parts_total": 0.0, "fees_total": 0.0, "subtotal": 0.0, "tax_total": 0.0,
              "total": 0.0, "amount_paid": 0.0, "balance_due": 0.0, "started_at": None, "completed_at": None,
              "invoiced_at": None, "created_at": stamp, "updated_at": stamp, "jobs": jobs}
        self.wo_count_of_customer[vehicle["customer_id"]] = self.wo_count_of_customer.get(vehicle["customer_id"], 0) + 1
        self.save_work_order(wo)
        self.emit("workorder.created", "work_orders", wo)
        if wo["mileage_in"] > (vehicle["mileage"] or 0):
            self._store_vehicle(vehicle, {**vehicle, "mileage": wo["mileage_in"], "updated_at": stamp})
        return wo

    def work_order_ids_with_status(self, shop_id: int, status: str):
        """Open work orders (draft, in_progress, waiting_parts, completed) of one status, by id."""
        return self.wo_by_status[shop_id][status]

    def deletable_draft_ids(self, shop_id: int) -> list[int]:
        """Drafts nothing refers to (no appointment, payment or inspection): a hard delete loses nothing."""
        return [wid for wid in self.wo_by_status[shop_id]["draft"]
                if wid not in self.linked_wo and not self.payments_of_wo.get(wid) and wid not in self.inspection_of_wo]

    def delete_work_order(self, wo: dict) -> None:
        self.store.delete("work_orders", wo["id"])
        self._index_wo(wo, None)
        self.wo_count_of_customer[wo["customer_id"]] -= 1
