"""/agent/customers: find a customer, see their whole history, add addresses and notes, merge and undo.

Thin views over kb.followup (customers, timeline, merging, cases.add_note). Everything here is
customers' personal data, so, as for their email on /agent/mail, only support agents and admins
(kb.agents.PERMISSIONS "read_customer_mail") see these pages; editors get 403.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from kb import agents
from kb.db import get_session
from kb.errors import FieldError, NotFound, ValidationError
from kb.followup import cases, customers, merging, timeline
from kb.followup.models import IDENTITY_KINDS, Customer, CustomerMerge
from kb.models import MAX_ID, parse_id, parse_whole
from kb.web.agent import bp
from kb.web.agent.auth import current_agent, refuse_anonymous

NOTE_CHANNELS = [("phone", "Phone"), ("chat", "Chat"), ("in_person", "In person"), ("social", "Social media"),
                 ("other", "Other")]


class IdentityForm(FlaskForm):
    """Another email address, phone number or other handle for the customer."""

    kind = SelectField("Kind", choices=list(IDENTITY_KINDS))
    value = StringField("Address or number", validators=[Length(max=320)])


class NoteForm(FlaskForm):
    """A note of a contact outside email: the channel, what happened, and the outcome."""

    # Plain values (WTForms 3.3 deprecates (value, label) pairs); the template shows the labels.
    channel = SelectField("Channel", choices=[value for value, _label in NOTE_CHANNELS])
    note = TextAreaField("What happened", validators=[Length(max=cases.MAX_NOTE)])
    outcome = StringField("Outcome", validators=[Length(max=200)])


class MergeForm(FlaskForm):
    """The customer to merge into the one shown (confirmed on its own page)."""

    merged_id = HiddenField()


class ActionForm(FlaskForm):
    """A button that only needs its CSRF token (undo)."""


def customers_required(view):
    """Decorator: the view runs only for a logged-in agent allowed to read customers' data (else 403)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        refusal = refuse_anonymous()
        if refusal is not None:
            return refusal
        if not agents.can(current_agent(), "read_customer_mail"):
            abort(403, "Customers' details are shown to support agents and admins only.")
        return view(*args, **kwargs)
    return wrapped


@bp.context_processor
def _customer_menu() -> dict:
    """Whether the menu shows "Customers" to this agent."""
    return {"can_see_customers": agents.can(current_agent(), "read_customer_mail")}


def _customer(customer_id: int) -> Customer:
    """The customer with this id as stored (merged or not), or a 404."""
    customer = get_session().get(Customer, customer_id) if 0 < customer_id <= MAX_ID else None
    if customer is None:
        abort(404, "There is no customer with this number.")
    return customer


def _live(customer_id: int) -> Customer:
    """The customer this id leads to now (after merges), or a 404."""
    try:
        return customers.live(get_session(), _customer(customer_id).id)
    except NotFound as exc:
        abort(404, str(exc))


@bp.get("/customers")
@customers_required
def customers_list():
    """Search customers by address, name or phone; without a query, the newest."""
    q = request.args.get("q", "")[: customers.MAX_QUERY]
    session = get_session()
    found = customers.find_customers(session, q)
    return render_template("agent/customers.html", q=q, found=found, limit=customers.SEARCH_LIMIT,
                           identities={c.id: customers.identities(session, c) for c in found})


def _page_number() -> int:
    """The timeline page asked for (0 is the newest)."""
    return parse_whole(request.args.get("page", "0"), 0, timeline.MAX_OFFSET // timeline.PAGE) or 0


def _merge_candidates(session, customer: Customer, q: str) -> list[Customer]:
    """Customers the agent may mean to merge into this one: by number, or by search."""
    if not q.strip():
        return []
    found = customers.find_customers(session, q, 20)
    if parse_id(q) is not None:
        by_id = session.get(Customer, parse_id(q))
        found = ([by_id] if by_id is not None else []) + found
    return [c for c in dict.fromkeys(found) if c.id != customer.id][:20]


def _render(customer: Customer, *, identity_form=None, note_form=None, status: int = 200):
    """The customer's page: identities, timeline, note form, merge search and merge history."""
    session = get_session()
    page = _page_number()
    entries = timeline.timeline(session, customer, limit=timeline.PAGE + 1, offset=page * timeline.PAGE)
    merge_q = request.args.get("merge_q", "")[: customers.MAX_QUERY]
    merges = merging.history(session, customer)
    return render_template(
        "agent/customer.html", customer=customer, identities=customers.identities(session, customer),
        entries=entries[: timeline.PAGE], older=len(entries) > timeline.PAGE, page=page,
        identity_form=identity_form or IdentityForm(formdata=None), note_form=note_form or NoteForm(formdata=None),
        merges=merges, note_channels=NOTE_CHANNELS, merge_q=merge_q,
        candidates=_merge_candidates(session, customer, merge_q),
        candidate_identities=lambda c: customers.identities(session, c),
    ), status


@bp.get("/customers/<int:customer_id>")
@customers_required
def customer_page(customer_id: int):
    """One customer; a customer merged away redirects to the one that holds their history now."""
    customer = _live(customer_id)
    if customer.id != customer_id:
        return redirect(url_for("agent.customer_page", customer_id=customer.id))
    return _render(customer)


@bp.post("/customers/<int:customer_id>/identities")
@customers_required
def customer_add_identity(customer_id: int):
    """Add an address or number; one another customer has is refused (merge the two instead)."""
    customer, form, session = _live(customer_id), IdentityForm(), get_session()
    if not form.validate_on_submit():
        flash("Choose a kind and enter an address or number.", "error")
        return _render(customer, identity_form=form, status=422)
    try:
        customers.add_identity(session, customer, form.kind.data, form.value.data or "")
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
        return _render(customer, identity_form=form, status=422)
    flash("Added.", "success")
    return redirect(url_for("agent.customer_page", customer_id=customer.id))


@bp.post("/customers/<int:customer_id>/notes")
@customers_required
def customer_add_note(customer_id: int):
    """Log a contact outside email (a call, a chat, a visit...) on the customer's timeline."""
    customer, form, session = _live(customer_id), NoteForm(), get_session()
    if not form.validate_on_submit():
        flash("Choose a channel and write what happened.", "error")
        return _render(customer, note_form=form, status=422)
    try:
        cases.add_note(session, agent_id=current_agent().id, text=form.note.data or "", channel=form.channel.data,
                       outcome=form.outcome.data or "", customer_id=customer.id)
        session.commit()
    except (FieldError, ValidationError) as exc:
        session.rollback()
        flash(str(exc), "error")
        return _render(customer, note_form=form, status=422)
    flash("Note added.", "success")
    return redirect(url_for("agent.customer_page", customer_id=customer.id))


@bp.get("/customers/<int:customer_id>/merge/<int:merged_id>")
@customers_required
def customer_merge_confirm(customer_id: int, merged_id: int):
    """Confirm merging customer ``merged_id`` into this one, showing both."""
    session = get_session()
    kept, merged = _live(customer_id), _customer(merged_id)
    error = None
    try:
        merging.check(kept, merged)
    except ValidationError as exc:
        error = str(exc)
    return render_template("agent/customer_merge.html", kept=kept, merged=merged, error=error,
                           kept_identities=customers.identities(session, kept),
                           merged_identities=customers.identities(session, merged),
                           form=MergeForm(formdata=None, merged_id=str(merged.id))), (422 if error else 200)


@bp.post("/customers/<int:customer_id>/merge")
@customers_required
def customer_merge(customer_id: int):
    """Merge the confirmed customer into this one."""
    form, session = MergeForm(), get_session()
    kept = _live(customer_id)
    merged_id = form.merged_id.data or ""
    if not form.validate_on_submit() or parse_id(merged_id) is None:
        flash("Choose the customer to merge into this one.", "error")
        return redirect(url_for("agent.customer_page", customer_id=kept.id))
    merged = _customer(parse_id(merged_id))
    try:
        merging.merge(session, kept, merged, current_agent().id)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"Customer #{merged.id} is merged into this one. Undo it below if it was a mistake.", "success")
    return redirect(url_for("agent.customer_page", customer_id=kept.id))


@bp.post("/customers/merges/<int:merge_id>/undo")
@customers_required
def customer_merge_undo(merge_id: int):
    """Undo a merge: the merged customer gets back exactly what was moved."""
    form, session = ActionForm(), get_session()
    if not form.validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    record = session.get(CustomerMerge, merge_id) if 0 < merge_id <= MAX_ID else None
    if record is None:
        abort(404, "There is no such merge.")
    already = record.undone_at is not None
    merging.undo(session, merge_id, current_agent().id)
    session.commit()
    flash("That merge was undone already." if already else f"Merge undone: customer #{record.merged_id} is back.",
          "success")
    return redirect(url_for("agent.customer_page", customer_id=record.merged_id))
