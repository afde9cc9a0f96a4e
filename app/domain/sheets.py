"""CSV for spreadsheets: cells a spreadsheet would run made plain text, and the weekly report as CSV rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

# A spreadsheet runs a text cell that starts with one of these as a formula (=HYPERLINK(...) in an event_id).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PERIOD_COLUMNS = ["start", "week", "end", "days", "days_so_far", "hands", "gel_ml", "entries", "entry_rate_pct",
                  "patient_days", "census_days", "census_missing", "expected_opportunities", "compliance_pct",
                  "ml_per_patient_day", "offline", "offline_dispensers", "partial"]
DISPENSER_COLUMNS = ["dispenser", "name", "mode", "offline_s", "refills", "ran_empty"]


def inert(cell: object) -> object:
    """A CSV text cell a spreadsheet would evaluate, made plain text with a leading quote; numbers unchanged."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def cell(value: Any) -> Any:
    """A CSV cell: empty for null, true/false, lists space-separated, formula-like text made plain text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return inert(value)


def csv_text(header: list[str], rows: Iterable[dict[str, Any]]) -> str:
    """These columns, one line per row (keys a row lacks are empty cells)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(row.get(key)) for key in header])
    return buf.getvalue()


def report_rows(answer: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The weekly report as CSV: (header, rows) of the week, the weeks before, its days and its dispensers."""
    settings = {"target_pct": answer["target_pct"],
                "reference_ml_per_patient_day": answer["reference_ml_per_patient_day"]}
    rows = [{"section": "week", **settings, **answer["summary"]}]
    rows += [{"section": "previous", **settings, **r} for r in answer["previous"]]
    rows += [{"section": "day", **settings, **r} for r in answer["days"]]
    rows += [{"section": "dispenser", "start": answer["from"], "end": answer["to"], **d, "dispenser": d["id"],
              "offline_dispensers": None} for d in answer["dispensers"]]
    rate = PERIOD_COLUMNS.index("compliance_pct") + 1  # the target beside the rate, the reference beside ml/pd
    header = ["section", *PERIOD_COLUMNS[:rate], "target_pct", "ml_per_patient_day", "reference_ml_per_patient_day",
              *PERIOD_COLUMNS[rate + 1:], *DISPENSER_COLUMNS]
    return header, rows
