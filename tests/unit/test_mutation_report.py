"""make mutate's report: a module's score, and the rows of modules not run kept from the last results."""

from __future__ import annotations

from tools.mutation_report import previous, render, summary

WRITES, SPOOL = "app/store/writes.py", "gel_dispenser/spool.py"


def test_the_score_leaves_out_the_equivalents_and_counts_what_did_not_run() -> None:
    found = {"app.store.writes.a__mutmut_1": "killed", "app.store.writes.a__mutmut_2": "killed",
             "app.store.writes.a__mutmut_3": "survived", "app.store.writes.a__mutmut_4": "survived",
             "app.store.writes.a__mutmut_5": "not checked"}
    row, open_ = summary(WRITES, found, {"app.store.writes.a__mutmut_4": "the same"}, "2026-12-05, abc1234")
    assert row == "| `app/store/writes.py` | 2026-12-05, abc1234 | 5 | 2 | 2 | 1 | 1 | 2 / 3 = 66 % |"  # not rounded up
    assert open_ == ["app.store.writes.a__mutmut_3"]


def test_a_module_not_run_again_keeps_its_row_and_survivors_from_the_last_results() -> None:
    rows = ["| `app/store/writes.py` | 2026-12-04, abc1234 | 5 | 2 | 2 | 1 | 1 | 2 / 3 = 66 % |",
            "| `gel_dispenser/spool.py` | 2026-12-05, def5678 | 3 | 3 | 0 | 0 | 0 | 3 / 3 = 100 % |"]
    section = render(rows, ["app.store.writes.a__mutmut_3", "app.store.writes.a__mutmut_6"], {}, [WRITES, SPOOL])
    named_since = {"app.store.writes.a__mutmut_6": "the same"}
    assert previous(section, [WRITES, SPOOL], named_since) == {WRITES: (rows[0], ["app.store.writes.a__mutmut_3"]),
                                                               SPOOL: (rows[1], [])}


def test_a_table_of_one_run_without_a_run_column_is_read_with_its_date_and_commit() -> None:
    section = ("Run on 2026-12-05, commit 9d34b80.\n\n| `gel_toolkit.py` | 78 | 76 | 2 | 1 | 0 | 76 / 77 = 99 % |\n"
               "\n- `gel_toolkit.x_mask__mutmut_7`\n")
    assert previous(section, ["gel_toolkit.py"], {}) == {"gel_toolkit.py": (
        "| `gel_toolkit.py` | 2026-12-05, 9d34b80 | 78 | 76 | 2 | 1 | 0 | 76 / 77 = 99 % |",
        ["gel_toolkit.x_mask__mutmut_7"])}
