/* The dashboard's redraw: every change is accumulated and the views redraw once per animation frame, however many
 * deltas arrived in between. Views ask for a redraw here (search typed, view switched) without knowing who draws:
 * the entry (main.js) registers the views. */
import { perFrame } from "../shared/format.js";
import { state } from "../shared/state.js";

let pending = null;
let views = [];

function merge(into, change) {
  if (!into) {
    return Object.assign({}, change, { changed: new Set(change.changed || []) });
  }
  (change.changed || []).forEach((id) => into.changed.add(id));
  ["full", "membership", "renamed", "alerts", "totals", "groups", "tick", "relayout"].forEach((key) => {
    if (change[key]) into[key] = true;
  });
  return into;
}

const flush = perFrame(() => {
  const change = pending;
  pending = null;
  if (!change || !state.payload) return;
  views.forEach((v) => v.render(change));
});

/** The views that redraw, each with `render(change)`, in drawing order. */
export function drawViews(list) {
  views = list;
}

/** Ask for a redraw in the next frame. */
export function requestRender(change) {
  pending = merge(pending, change || {});
  flush();
}
