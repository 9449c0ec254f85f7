"""/agent/admin/recovery: the gesture types agents may offer and the bounds above which offers wait (admins only).

Thin views over kb.recovery.catalog: a refused form comes back with a 422, what was typed kept, and
each message at its field. Plain POST forms with CSRF tokens: the pages need no JavaScript.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, flash, redirect, render_template, request, url_for

from kb.db import get_session
from kb.errors import FieldError, NotFound
from kb.recovery import catalog
from kb.recovery.models import APPROVER_ROLES, GESTURE_KINDS, MONEY_KINDS, SCOPES
from kb.recovery.wording import PLACEHOLDERS
from kb.web.agent import bp
from kb.web.agent.auth import current_agent

GESTURE_FIELDS = ("name", "kind", "currency", "template", "template_zh", "template_nb", "needs_reference", "active")
BOUND_FIELDS = ("scope", "gesture_type", "max_amount", "max_count", "approver_role")


def recovery_admin_required(view):
    """Decorator: the view runs only for an active admin (editors and support agents get 403)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        agent = current_agent()
        if agent is None or agent.role != "admin":
            abort(403, "Only admins can change gesture types and bounds.")
        return view(*args, **kwargs)
    return wrapped


def _found(getter, item_id: int):
    """The gesture type or bound, or a 404."""
    try:
        return getter(get_session(), item_id)
    except NotFound as exc:
        abort(404, str(exc))


def _form_values(fields: tuple[str, ...]) -> dict[str, str]:
    """The submitted form's values of ``fields`` (absent checkboxes as "")."""
    return {name: request.form.get(name, "") for name in fields}


@bp.get("/admin/recovery")
@recovery_admin_required
def recovery_admin():
    """The gesture types and the bounds, with links to add and change them."""
    session = get_session()
    return render_template("agent/recovery_admin.html", gestures=catalog.list_gesture_types(session),
                           bounds=catalog.list_bounds(session), kind_labels=catalog.KIND_LABELS,
                           scope_labels=catalog.SCOPE_LABELS)


def _gesture_values(gesture) -> dict[str, str]:
    """A gesture type's fields as the form shows them."""
    return {"name": gesture.name, "kind": gesture.kind, "currency": gesture.currency, "template": gesture.template,
            "template_zh": (gesture.templates or {}).get("zh", ""), "template_nb": (gesture.templates or {}).get("nb", ""),
            "needs_reference": "1" if gesture.needs_reference else "", "active": "1" if gesture.active else ""}


def _gesture_page(gesture=None, *, values: dict, errors: dict | None = None, status: int = 200):
    """The form to add (``gesture`` None) or change a gesture type."""
    return render_template("agent/recovery_gesture.html", gesture=gesture, values=values, errors=errors or {},
                           kinds=GESTURE_KINDS, kind_labels=catalog.KIND_LABELS, money_kinds=MONEY_KINDS,
                           placeholders=PLACEHOLDERS), status


def _save(change, values: dict, page, done: str):
    """Run ``change()``, commit and go back to the list; a refused form is shown again with a 422."""
    session = get_session()
    try:
        item = change()
        session.commit()
    except FieldError as exc:
        session.rollback()
        return page(values=values, errors=exc.errors, status=422)
    flash(done.format(item=item), "success")
    return redirect(url_for("agent.recovery_admin"), 303)


@bp.route("/admin/recovery/gestures/new", methods=("GET", "POST"))
@recovery_admin_required
def recovery_gesture_new():
    """Add a gesture type."""
    if request.method == "GET":
        return _gesture_page(values={"kind": "fixed_credit", "active": "1"})
    values = _form_values(GESTURE_FIELDS)
    return _save(lambda: catalog.create_gesture_type(get_session(), values), values, _gesture_page,
                 "Added the gesture type “{item.name}”.")


@bp.route("/admin/recovery/gestures/<int:gesture_id>", methods=("GET", "POST"))
@recovery_admin_required
def recovery_gesture_edit(gesture_id: int):
    """Change a gesture type (offers already made keep their message and amount)."""
    gesture = _found(catalog.get_gesture_type, gesture_id)
    page = lambda **kw: _gesture_page(gesture, **kw)  # noqa: E731
    if request.method == "GET":
        return page(values=_gesture_values(gesture))
    values = _form_values(GESTURE_FIELDS)
    return _save(lambda: catalog.update_gesture_type(get_session(), gesture, values), values, page,
                 "Saved the gesture type “{item.name}”.")


def _bound_values(bound) -> dict[str, str]:
    """A bound's fields as the form shows them."""
    return {"scope": bound.scope, "gesture_type": str(bound.gesture_type_id or ""),
            "max_amount": "" if bound.max_amount is None else str(bound.max_amount),
            "max_count": "" if bound.max_count is None else str(bound.max_count), "approver_role": bound.approver_role}


def _bound_page(bound=None, *, values: dict, errors: dict | None = None, status: int = 200):
    """The form to add (``bound`` None) or change a bound."""
    return render_template("agent/recovery_bound.html", bound=bound, values=values, errors=errors or {},
                           scopes=SCOPES, scope_labels=catalog.SCOPE_LABELS, roles=APPROVER_ROLES,
                           gestures=catalog.list_gesture_types(get_session())), status


@bp.route("/admin/recovery/bounds/new", methods=("GET", "POST"))
@recovery_admin_required
def recovery_bound_new():
    """Add a bound."""
    if request.method == "GET":
        return _bound_page(values={"scope": "per_incident", "approver_role": "admin"})
    values = _form_values(BOUND_FIELDS)
    return _save(lambda: catalog.create_bound(get_session(), values), values, _bound_page, "Added the bound.")


@bp.route("/admin/recovery/bounds/<int:bound_id>", methods=("GET", "POST"))
@recovery_admin_required
def recovery_bound_edit(bound_id: int):
    """Change a bound in place: past offers keep the copy of the bound they were measured against."""
    bound = _found(catalog.get_bound, bound_id)
    page = lambda **kw: _bound_page(bound, **kw)  # noqa: E731
    if request.method == "GET":
        return page(values=_bound_values(bound))
    values = _form_values(BOUND_FIELDS)
    return _save(lambda: catalog.update_bound(get_session(), bound, values), values, page, "Saved the bound.")


def _set_active(bound_id: int, active: bool):
    """Deactivate or reactivate the bound and go back to the list, saying what happened."""
    session, bound = get_session(), _found(catalog.get_bound, bound_id)
    try:
        catalog.set_bound_active(session, bound, active)
        session.commit()
    except FieldError as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        flash("The bound is active again." if bound.active else "The bound is deactivated.", "success")
    return redirect(url_for("agent.recovery_admin"), 303)


@bp.post("/admin/recovery/bounds/<int:bound_id>/deactivate")
@recovery_admin_required
def recovery_bound_deactivate(bound_id: int):
    """Deactivate a bound: offers no longer meet it (those made under it keep their copy)."""
    return _set_active(bound_id, False)


@bp.post("/admin/recovery/bounds/<int:bound_id>/reactivate")
@recovery_admin_required
def recovery_bound_reactivate(bound_id: int):
    """Reactivate a bound, unless another active one of its scope and gesture holds the place."""
    return _set_active(bound_id, True)
