"""/agent/admin/synonyms: the synonym sets of one language, to add, edit, remove and switch (admins only).

Synonyms change every customer's search and every automatic reply, so, like gesture bounds, they
are an admin's setting. Thin views over kb.capture.synonyms: a refused form comes back with a 422,
what was typed kept and the message at its field. Plain POST forms: no JavaScript needed.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from kb.capture import synonyms
from kb.config import configured_languages
from kb.db import get_session
from kb.errors import FieldError, NotFound
from kb.web.agent import bp
from kb.web.agent.auth import admin_required

LANG_NAMES = {"en": "English", "zh": "Chinese", "nb": "Norwegian (bokmål)"}
EXAMPLES = {"en": ("refund, money back, reimburse", "parcel => package, shipment"),
            "zh": ("退款, 退钱", "包裹 => 快递, 货物"),
            "nb": ("refusjon, pengene tilbake", "pakke => sending, forsendelse")}


def _languages() -> list[str]:
    """The languages the page offers: the portal's, then any kb ships defaults for."""
    return list(dict.fromkeys([*configured_languages(current_app.config), *synonyms.DEFAULT_LANGS]))


def _lang(value) -> str:
    """The language asked for, or the first offered one for none or nonsense."""
    try:
        lang = synonyms.check_lang(value)
    except FieldError:
        lang = ""
    offered = _languages()
    return lang if lang in offered else offered[0]


def _page(lang: str, *, values: dict | None = None, errors: dict | None = None, status: int = 200):
    """The language's sets and the form to add one (defaults get their rows first)."""
    session = get_session()
    if synonyms.load_defaults(session):
        session.commit()
    return render_template("agent/synonyms.html", lang=lang, languages=_languages(), names=LANG_NAMES,
                           sets=synonyms.list_sets(session, lang), written=synonyms.written,
                           examples=EXAMPLES.get(lang, EXAMPLES["en"]), values=values or {},
                           errors=errors or {}), status


def _back(lang: str):
    """Back to the language's list (303: a reload does not post again)."""
    return redirect(url_for("agent.synonyms_admin", lang=lang), 303)


def _found(set_id: int):
    """The set, or a 404."""
    try:
        return synonyms.get_set(get_session(), set_id)
    except NotFound as exc:
        abort(404, str(exc))


@bp.get("/admin/synonyms")
@admin_required
def synonyms_admin():
    """The sets of one language (?lang=en), agents' own first, then kb's defaults; ?terms= pre-fills a new set."""
    return _page(_lang(request.args.get("lang")), values={"terms": request.args.get("terms", "")[:2000]})


@bp.post("/admin/synonyms")
@admin_required
def synonyms_add():
    """Add a set written as one line."""
    asked, line = request.form.get("lang", ""), request.form.get("terms", "")
    lang, session = _lang(asked), get_session()
    try:
        if lang != asked:  # a language the page does not offer: say so rather than file it elsewhere
            raise FieldError({"lang": "Choose one of the languages listed above."})
        synonyms.add_set(session, lang, line)
        session.commit()
    except FieldError as exc:
        session.rollback()
        return _page(lang, values={"terms": line}, errors=exc.errors, status=422)
    flash("Added the set: search and automatic replies use it within seconds.", "success")
    return _back(lang)


@bp.route("/admin/synonyms/<int:set_id>", methods=("GET", "POST"))
@admin_required
def synonyms_edit(set_id: int):
    """Rewrite one of the agents' sets (a default set can only be switched off)."""
    row = _found(set_id)
    if row.source != "agent":
        abort(404, "A default set cannot be edited: switch it off and add your own.")
    if request.method == "GET":
        return render_template("agent/synonym_edit.html", row=row, value=synonyms.written(row.kind, row.terms),
                               errors={})
    line, session = request.form.get("terms", ""), get_session()
    try:
        synonyms.update_set(session, set_id, line)
        session.commit()
    except FieldError as exc:
        session.rollback()
        return render_template("agent/synonym_edit.html", row=row, value=line, errors=exc.errors), 422
    flash("Saved the set.", "success")
    return _back(row.lang)


@bp.post("/admin/synonyms/<int:set_id>/remove")
@admin_required
def synonyms_remove(set_id: int):
    """Delete one of the agents' sets."""
    return _change(set_id, synonyms.remove_set, "Removed the set.")


@bp.post("/admin/synonyms/<int:set_id>/off")
@admin_required
def synonyms_off(set_id: int):
    """Switch a set off: search and replies stop using it (a default stays off after upgrades)."""
    return _change(set_id, lambda s, i: synonyms.set_active(s, i, False), "Switched the set off.")


@bp.post("/admin/synonyms/<int:set_id>/on")
@admin_required
def synonyms_on(set_id: int):
    """Switch a set back on."""
    return _change(set_id, lambda s, i: synonyms.set_active(s, i, True), "Switched the set on.")


def _change(set_id: int, change, done: str):
    """Apply ``change(session, set_id)``, commit, and go back to the set's language, saying what happened."""
    lang, session = _found(set_id).lang, get_session()
    try:
        change(session, set_id)
        session.commit()
    except FieldError as exc:
        session.rollback()
        flash(" ".join(exc.errors.values()), "error")
    else:
        flash(done, "success")
    return _back(lang)
