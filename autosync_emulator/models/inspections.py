"""Inspections: created on an open work order (their red/yellow items propose jobs), sent, answered."""
from __future__ import annotations

from ..records import build_job
from ..vocabulary import INSPECTION_ITEMS, ITEM_NOTES


class InspectionsMixin:
    def _index_inspection(self, old: dict | None, new: dict) -> None:
        open_ = self.open_inspections[new["shop_id"]]
        if old is not None and old["status"] in open_:
            open_[old["status"]].discard(old["id"])
        if new["status"] in open_:
            open_[new["status"]].add(new["id"])

    # -------------------------------------------------------------- inspections
    def open_inspection_ids(self, shop_id: int, status: str):
        """Inspections still in_progress or sent, by id."""
        return self.open_inspections[shop_id][status]

    def uninspected_in_progress_ids(self, shop_id: int) -> list[int]:
        return [wid for wid in self.wo_by_status[shop_id]["in_progress"] if wid not in self.inspection_of_wo]

    def create_inspection(self, wo: dict, rng) -> dict:
        ctx = self.ctx(wo["shop_id"])
        stamp = self.now_iso()
        iid = self.ids.next("inspections")
        items = []
        new_jobs = []
        for name, category, job_name in rng.sample(INSPECTION_ITEMS, rng.randint(6, 10)):
            item_id = self.ids.next("inspection_items")
            condition = rng.choices(("green", "yellow", "red"), (70, 20, 10))[0]
            photos = []
            if condition != "green":
                for _ in range(rng.randint(1, 2)):
                    pid = self.ids.next("photos")
                    photos.append({"id": pid, "url": f"https://media.autosync.example/inspections/{iid}/{item_id}/{pid}.jpg",
                                   "caption": rng.choice(("Before", "Close-up", "Measurement", None))})
            item = {"id": item_id, "job_id": None, "name": name, "category": category, "condition": condition,
                    "notes": rng.choice(ITEM_NOTES[condition]) or None, "estimate_amount": None,
                    "approval": "not_applicable", "approved_at": None, "photos": photos}
            if condition != "green":
                job = build_job(rng, self.ids, ctx, wo["id"], job_name, wo["technician_id"], "pending", None,
                                ctx.tax_labor, with_fee=False)
                new_jobs.append(job)
                item.update(job_id=job["id"], estimate_amount=job["total"], approval="pending")
            items.append(item)
        insp = {"id": iid, "shop_id": wo["shop_id"], "work_order_id": wo["id"], "vehicle_id": wo["vehicle_id"],
                "technician_id": wo["technician_id"], "status": "in_progress", "sent_at": None, "responded_at": None,
                "created_at": stamp, "updated_at": stamp, "items": items}
        self.inspection_of_wo[wo["id"]] = iid
        self.store.put("inspections", insp)
        self._index_inspection(None, insp)
        if new_jobs:
            self.save_work_order({**wo, "jobs": [*wo["jobs"], *new_jobs]})
        return insp

    def send_inspection(self, insp: dict) -> dict:
        now = self.now_iso()
        new = {**insp, "status": "sent", "sent_at": now, "updated_at": now}
        self.store.put("inspections", new)
        self._index_inspection(insp, new)
        self.emit("inspection.completed", "inspections", new)
        return new

    def respond_inspection(self, insp: dict, rng, decide_all: bool = False) -> dict:
        """The customer answers: each pending yellow/red item approved or declined (or left)."""
        now = self.now_iso()
        wo = self.store.latest("work_orders", insp["work_order_id"])
        jobs = {j["id"]: j for j in wo["jobs"]}
        items = []
        approved_any = False
        for item in insp["items"]:
            if item["approval"] != "pending":
                items.append(item)
                continue
            choice = rng.choices(("approved", "declined", "pending"), (50, 35, 0 if decide_all else 15))[0]
            if choice == "declined":
                trial = {**jobs, item["job_id"]: {**jobs[item["job_id"]], "status": "declined"}}
                if self._total_if(wo, list(trial.values())) < self._non_failed_net_c(wo["id"]):
                    choice = "approved"  # a decline may never leave payments above the total
            if choice == "approved":
                approved_any = True
                jobs[item["job_id"]] = {**jobs[item["job_id"]], "status": "approved", "approved_at": now}
                items.append({**item, "approval": "approved", "approved_at": now})
            elif choice == "declined":
                jobs[item["job_id"]] = {**jobs[item["job_id"]], "status": "declined", "approved_at": None}
                items.append({**item, "approval": "declined"})
            else:
                items.append(item)
        new = {**insp, "status": "responded", "sent_at": insp["sent_at"] or now, "responded_at": now,
               "updated_at": now, "items": items}
        self.store.put("inspections", new)
        self._index_inspection(insp, new)
        wo = self.save_work_order({**wo, "jobs": [jobs[j["id"]] for j in wo["jobs"]]})
        if approved_any:
            self.emit("inspection.approved", "inspections", new)
        self.emit("workorder.updated", "work_orders", wo)
        return new
