"""The dashboard page (`/`, `/?kiosk=1`, `?lang=fr|en`) and the version it was built from."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request
from flask.blueprints import BlueprintSetupState

from app.extensions import get_config, get_dashboard_version, get_translations
from app.web.dates import iso_week, today

bp = Blueprint("views", __name__)
LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
POLL_S = 5  # the page polls this often; its text says so through "{s}"
# connect-src 'self' also allows the websocket to this same host (ws: or wss:, CSP level 3); never another host.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; "
       "form-action 'self'")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def load_catalogs(folder: Path = TRANSLATIONS) -> dict[str, dict[str, Any]]:
    """One catalog per language (`fr.json`, `en.json`): strings for the page, and the script's under `js`."""
    return {lang: json.loads((folder / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES}


def package_version() -> str:
    """The installed package version, or 0 when running from a bare checkout."""
    try:
        return importlib.metadata.version("gel-dispenser")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def content_hash(*folders: str | Path | None) -> str:
    """A short hash of every file (path and bytes) under the given folders."""
    digest = hashlib.sha256()
    for folder in folders:
        if not folder or not Path(folder).is_dir():
            continue
        root = Path(folder)
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_version(app: Flask) -> str:
    """Package version + hash of the static files and templates, e.g. `1.0.0+3f2a9c81d0e4`."""
    templates = Path(app.root_path) / (app.template_folder or "templates")
    return f"{package_version()}+{content_hash(app.static_folder, templates)}"


def dashboard_version() -> str:
    """The version a page was built from: its files, and the group tree its picker shows (a reload may change it).

    Same form as build_version(); an open kiosk reloads itself when it changes.
    """
    cfg = get_config()
    cached = current_app.extensions.get("dashboard_version_of")
    if cached is None or cached[0] is not cfg:
        files = get_dashboard_version()
        tree = json.dumps([[g.id, g.name, g.parent] for g in cfg.groups], ensure_ascii=False)
        package, _, digest = files.partition("+")
        mixed = hashlib.sha256(f"{digest}\0{tree}".encode()).hexdigest()[:12]
        cached = current_app.extensions["dashboard_version_of"] = (cfg, f"{package}+{mixed}")
    return cached[1]


@bp.record_once
def _compute_version(state: BlueprintSetupState) -> None:
    state.app.extensions["dashboard_version"] = build_version(state.app)
    state.app.extensions["translations"] = load_catalogs()




def pick_language() -> str:
    """`?lang=` if it is fr or en, else the browser's Accept-Language, else French."""
    asked = (request.args.get("lang") or "").lower()[:2]
    if asked in LANGUAGES:
        return asked
    # Best quality first; "fr-CA" counts as French (Werkzeug's best_match would prefer an exact "en").
    for value, _quality in sorted(request.accept_languages, key=lambda item: -item[1]):
        primary = value.lower().replace("_", "-").split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def is_kiosk() -> bool:
    """`?kiosk=1` (or true/yes/on) selects the wall display."""
    return (request.args.get("kiosk") or "").lower() in ("1", "true", "yes", "on")


PAGE_S = 10  # kiosk: seconds per page when the dispensers do not fit one screen


def group_tree() -> list[dict[str, Any]]:
    """The declared groups (id, name, parent), for the picker and the breadcrumb."""
    return [{"id": g.id, "name": g.name, "parent": g.parent} for g in getattr(get_config(), "groups", ())]


def chosen_group(tree: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `?group=` asked for, with its path of names from the root; 404 when no such group is declared."""
    wanted = request.args.get("group") or None
    if wanted is None:
        return None
    by_id = {g["id"]: g for g in tree}
    if wanted not in by_id:
        abort(404, description=f"unknown group {wanted!r}")
    path, node = [], by_id[wanted]
    while node is not None and len(path) <= len(tree):
        path.insert(0, node["name"])
        node = by_id.get(node["parent"])
    return {"id": wanted, "path": path}


def page_settings(lang: str, strings: dict[str, Any], group: dict[str, Any] | None,
                  tree: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON block every page script reads."""
    return {
        "lang": lang,
        "locale": strings["locale"],
        "kiosk": is_kiosk(),
        "version": dashboard_version(),
        "timezone": get_config().timezone,
        "poll_ms": POLL_S * 1000,
        "page_s": PAGE_S,
        "group": group["id"] if group else None,
        "groups": tree,
        "strings": strings["js"],
    }


def html_page(html: str) -> Response:
    """An HTML page with the dashboard's security headers."""
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-cache"
    resp.vary.add("Accept-Language")
    return resp


def render_page(template: str, kiosk: bool | None = None, **extra: Any) -> Response:
    """A page in the asked language, for everything or the `?group=` asked for; `kiosk` forces the mode, `extra`
    goes into the settings its scripts read."""
    lang = pick_language()
    strings = get_translations(lang)
    tree = group_tree()
    group = chosen_group(tree)
    settings = page_settings(lang, strings, group, tree)
    if kiosk is not None:
        settings["kiosk"] = kiosk
    settings.update(extra)
    return html_page(render_template(template, t=strings, lang=lang, kiosk=settings["kiosk"], group=group,
                                     version=settings["version"], settings=settings))


@bp.get("/")
def index() -> Response:
    """The live dashboard, in French or English, normal or kiosk, for everything or one group."""
    return render_page("index.html")


@bp.get("/tournee")
def tournee() -> Response:
    """The refill round for phones: the dispensers to refill, most urgent first, with a "Refilled" button."""
    return render_page("tournee.html", kiosk=False)


@bp.get("/conformite")
def conformite() -> Response:
    """Hand-hygiene compliance of a group against its target: weeks, days, reference, census form; live."""
    return render_page("conformite.html", kiosk=False, today=today().isoformat())


@bp.get("/journal")
def journal() -> Response:
    """The audit journal: who changed what (read with a person's token, admin or hygiene)."""
    return render_page("journal.html", kiosk=False)


@bp.get("/rapport")
def rapport() -> Response:
    """The printable weekly report of a group (`week=YYYY-Www`, default this week): the PDF is the browser's print."""
    now = today()
    raw = request.args.get("week")
    monday = iso_week(raw) if raw else now - timedelta(days=now.weekday())
    iso = monday.isocalendar()
    return render_page("rapport.html", kiosk=False, today=now.isoformat(),
                       week=f"{iso.year}-W{iso.week:02d}", week_from=monday.isoformat(),
                       week_to=(monday + timedelta(days=6)).isoformat())


@bp.get("/api/version")
def version() -> Response:
    """The dashboard version: a kiosk reloads itself when it changes."""
    resp = Response(json.dumps({"version": dashboard_version()}), mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp
