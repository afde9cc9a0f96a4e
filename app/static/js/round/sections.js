/* The round's sections: "to refill" (low or under half full), "soon empty" (predicted empty within 2 days) and,
 * with "show all", the others. Each heading counts what its list shows, the ones refilled on this round apart. */
import { $, fill, levelOf, setText } from "../shared/format.js";
import { S } from "../shared/settings.js";

const REFILL_BELOW_PCT = 50; // a round refills what would not last until the next one
const SOON_MS = 48 * 3600000;
export const SECTIONS = [["refill", "to_refill"], ["soon", "soon_empty"], ["other", "round_others"]];

/** The section an entry belongs in by its figures now. */
export function sectionOf(entry) {
  if (entry.low || levelOf(entry) < REFILL_BELOW_PCT) return "refill";
  const soon = entry.empty_at && new Date(entry.empty_at).getTime() - Date.now() < SOON_MS;
  return soon ? "soon" : "other";
}

/** Put each item (already sorted) in its section's list; `placeOf(entry)` says which. */
export function layOut(entries, items, placeOf) {
  const lists = { refill: [], soon: [], other: [] };
  entries.forEach((e) => {
    const li = items.get(e.id);
    li.dataset.section = placeOf(e);
    lists[li.dataset.section].push(li);
  });
  SECTIONS.forEach(([key]) => $(key + "-list").replaceChildren(...lists[key]));
}

/** Each heading from its list as shown; a section with nothing in it is hidden. */
export function showCounts() {
  let shown = 0;
  SECTIONS.forEach(([key, label]) => {
    const list = $(key + "-list");
    const all = list.children.length;
    const done = list.querySelectorAll(".is-refilled").length;
    shown += all;
    $(key + "-section").hidden = all === 0;
    setText($(key + "-count"), fill(S[label], { n: all - done }) + (done ? fill(S.refilled_n, { n: done }) : ""));
  });
  $("refill-empty").hidden = shown > 0;
}
