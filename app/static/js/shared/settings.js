/* What the server tells the page: the JSON block `<script type="application/json" id="dashboard-settings">` every
 * page template writes (language, locale, time zone, poll period, group, strings...). Read once, here only: no
 * global, no inline script (the CSP allows scripts from 'self' only). */
export const settings = JSON.parse(document.getElementById("dashboard-settings").textContent);
export const S = settings.strings; // the page's strings in its language
export const KIOSK = !!settings.kiosk; // the wall display
