/* The vendored libraries (app/static/vendor, loaded by the page as classic scripts before its entry module, which
 * runs after them: deferred scripts and modules run in document order). They define globals; this module alone
 * reads them, so the rest imports them like any module. Undefined on a page that does not load them. */
export const Chart = globalThis.Chart; // Chart.js, on the dashboard, compliance and report pages
export const io = globalThis.io; // the Socket.IO client, on the live pages
