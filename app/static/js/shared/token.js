/* The staff token (admin or `[server] maintenance_token`) the refill round and the census form send as a Bearer
 * header: typed once, kept in localStorage (no cookie, no session), forgotten when the server refuses it. */
// The key the refill round has always used: a token typed on the round serves the census form too.
const KEY = "gel-refill-token";
let memory = ""; // private mode (no localStorage): the token lasts for this page only

function get() {
  try {
    return window.localStorage.getItem(KEY) || memory;
  } catch (err) {
    return memory;
  }
}

function set(value) {
  memory = value || "";
  try {
    if (value) window.localStorage.setItem(KEY, value);
    else window.localStorage.removeItem(KEY);
  } catch (err) {
    /* kept in memory above */
  }
}

export const staffToken = { get: get, set: set, forget: () => set("") };
