/* "Signed in as <name> (role)": who the kept staff token belongs to, asked of the server (GET api/whoami). */
import { $, fill, setText } from "./format.js";
import { S } from "./settings.js";
import { staffToken } from "./token.js";

const me = { name: "", role: "" };

/** Show who the kept token is in the element `id` (hidden without a token, or when the server refuses it). */
export async function showSignedIn(id) {
  const node = $(id);
  const token = staffToken.get();
  me.name = "";
  if (!node) return me;
  node.hidden = true;
  if (!token) return me;
  try {
    const resp = await fetch(new URL("api/whoami", window.location.href).toString(), {
      headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "same-origin",
    });
    if (!resp.ok) return me;
    const body = await resp.json();
    me.name = body.name || body.id || "";
    me.role = body.role || "";
    setText(node, fill(S.signed_in, { name: me.name, role: S["role_" + me.role] || me.role }));
    node.hidden = false;
  } catch (err) {
    /* offline: the line stays hidden; the next action asks again */
  }
  return me;
}

/** Who the last showSignedIn() found ("" when nobody). */
export const signedIn = () => me;
