"""Customers: found by any of their addresses, created on first sight, race-safe."""

from __future__ import annotations

import re

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply.addresses import sender_key
from kb.autoreply.storable import storable_text
from kb.db import begin_write
from kb.errors import NotFound, ValidationError
from kb.followup.models import IDENTITY_KINDS, Customer, CustomerIdentity

EMAIL = re.compile(r"[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+")
MAX_MERGE_HOPS = 20  # a chain of merges longer than this is a loop made by hand in SQL


def normalize(kind: str, value: str) -> str:
    """The lookup form of an identity: one key per mailbox for email, digits (and a leading +) for phones."""
    value = storable_text(value, 320).strip()
    if kind == "email":
        return sender_key(value)
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return ("+" if value.startswith("+") else "") + digits
    return value.casefold()


def check_identity(kind: str, value: str) -> str:
    """The normalised identity, or ValidationError saying what a valid one looks like."""
    if kind not in IDENTITY_KINDS:
        raise ValidationError(f"Unknown kind {kind!r}: use one of {', '.join(IDENTITY_KINDS)}.")
    if kind == "email" and not EMAIL.fullmatch(value.strip()):
        raise ValidationError("Enter an email address such as name@example.com.")
    key = normalize(kind, value)
    if kind == "phone" and len(key.lstrip("+")) < 5:
        raise ValidationError("Enter a phone number of at least 5 digits, such as +47 22 33 44 55.")
    if not key:
        raise ValidationError("Enter a value.")
    return key


def live(session: so.Session, customer_id: int) -> Customer:
    """The customer, following merges to the one that holds the record now; NotFound if none."""
    customer = session.get(Customer, customer_id)
    for _ in range(MAX_MERGE_HOPS):
        if customer is None:
            raise NotFound("No such customer.")
        if customer.merged_into_id is None:
            return customer
        customer = session.get(Customer, customer.merged_into_id)
    raise NotFound("This customer's merges form a loop; undo one of them.")


def find_by_identity(session: so.Session, kind: str, value: str) -> Customer | None:
    """The customer with this address or number, if kb knows one."""
    key = normalize(kind, value)
    customer_id = session.scalar(sa.select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == kind, CustomerIdentity.value == key))
    return live(session, customer_id) if customer_id is not None else None


def customer_for(session: so.Session, kind: str, value: str, name: str = "") -> Customer:
    """The customer with this identity, created with it if new. Two callers at once get one customer.

    The caller commits; a savepoint keeps its transaction when another process created it first.
    """
    key = check_identity(kind, value)
    begin_write(session)
    found = find_by_identity(session, kind, key)
    if found is not None:
        if name and not found.name:
            found.name = storable_text(name, 200)
        return found
    try:
        with session.begin_nested():
            customer = Customer(name=storable_text(name, 200))
            session.add(customer)
            session.flush()
            session.add(CustomerIdentity(customer_id=customer.id, kind=kind, value=key,
                                         display=storable_text(value.strip(), 320)))
    except sa.exc.IntegrityError:
        found = find_by_identity(session, kind, key)
        if found is None:
            raise
        return found
    return customer


def customer_for_address(session: so.Session, address: str, name: str = "") -> Customer:
    """The customer with this email address, created if new (see customer_for)."""
    return customer_for(session, "email", address, name)


def add_identity(session: so.Session, customer: Customer, kind: str, value: str) -> CustomerIdentity:
    """Give the customer another address or number; refused if another customer has it. Caller commits."""
    key = check_identity(kind, value)
    owner = find_by_identity(session, kind, key)
    if owner is not None:
        if owner.id == customer.id:
            raise ValidationError("This customer has it already.")
        raise ValidationError(f"Customer #{owner.id} has it already: merge the two customers instead.")
    identity = CustomerIdentity(customer_id=customer.id, kind=kind, value=key, display=storable_text(value.strip(), 320))
    session.add(identity)
    return identity


def identities(session: so.Session, customer: Customer) -> list[CustomerIdentity]:
    """The customer's addresses and numbers, email first."""
    return list(session.scalars(sa.select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
                                .order_by(CustomerIdentity.kind, CustomerIdentity.id)))


def email_of(session: so.Session, customer: Customer | None) -> str:
    """The customer's first email address as they wrote it, or empty."""
    if customer is None:
        return ""
    return session.scalar(sa.select(CustomerIdentity.display).where(
        CustomerIdentity.customer_id == customer.id, CustomerIdentity.kind == "email"
    ).order_by(CustomerIdentity.id).limit(1)) or ""


SEARCH_LIMIT = 50
MAX_QUERY = 200


def _like(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its own % and _ taken literally (escape char \\)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_customers(session: so.Session, q: str, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """Live customers whose name, address or phone number contains ``q`` (any case); newest first, bounded.

    An empty query lists the newest customers. Digits in the query also match phone numbers however
    they were written ("22 33" finds "+47 22334455").
    """
    q = storable_text(q, MAX_QUERY).strip().casefold()
    query = sa.select(Customer).where(Customer.merged_into_id.is_(None))
    if q:
        pattern = _like(q)
        matches = [sa.func.lower(Customer.name).like(pattern, escape="\\"),
                   sa.func.lower(CustomerIdentity.value).like(pattern, escape="\\"),
                   sa.func.lower(CustomerIdentity.display).like(pattern, escape="\\")]
        digits = re.sub(r"\D", "", q)
        if len(digits) >= 3 and not re.search(r"[^\d\s()+.\-/]", q):  # the query looks like a phone number
            matches.append(sa.and_(CustomerIdentity.kind == "phone", CustomerIdentity.value.like(_like(digits), escape="\\")))
        owners = sa.select(CustomerIdentity.customer_id).where(sa.or_(*matches[1:]))
        query = query.where(sa.or_(matches[0], Customer.id.in_(owners)))
    return list(session.scalars(query.order_by(Customer.created_at.desc(), Customer.id.desc())
                                .limit(max(1, min(int(limit), SEARCH_LIMIT)))))
