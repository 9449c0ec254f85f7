"""Never answer what must not be answered: every skip rule, both ways, and the allow-list."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from kb.autoreply import rules
from kb.autoreply.parsing import ParsedEmail, parse_message

SUPPORT = "Support@KB.example"
DOMAIN = "kb.example"


def mail(body: str = "How do I reset my password?", **headers: str) -> ParsedEmail:
    """Parse a customer email; keyword arguments add headers (underscores become dashes)."""
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Kari Nordmann <kari@customer.no>")
    msg["To"] = "support@kb.example"
    msg["Subject"] = headers.pop("Subject", "Password reset")
    msg["Message-ID"] = "<q1@customer.no>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return parse_message(bytes(msg))


def reason(email: ParsedEmail, **kwargs) -> str | None:
    """skip_reason with kb's support address and domain."""
    return rules.skip_reason(email, support_address=SUPPORT, our_domain=DOMAIN, **kwargs)


def code(email: ParsedEmail, **kwargs) -> str | None:
    """Just the reason code."""
    found = reason(email, **kwargs)
    return found.split(":", 1)[0] if found else None


def test_an_ordinary_customer_email_is_answered():
    assert reason(mail()) is None


@pytest.mark.parametrize("headers, expected", [
    ({"Auto_Submitted": "auto-replied"}, rules.AUTO_SUBMITTED),
    ({"Auto_Submitted": "auto-generated"}, rules.AUTO_SUBMITTED),
    ({"Auto_Submitted": "Auto-Notified; owner-email=x@y.z"}, rules.AUTO_SUBMITTED),
    ({"Precedence": "bulk"}, rules.BULK),
    ({"Precedence": "JUNK"}, rules.BULK),
    ({"Precedence": "list"}, rules.BULK),
    ({"X_Precedence": "bulk"}, rules.BULK),
    ({"List_Id": "Customers <customers.lists.example.com>"}, rules.LIST),
    ({"List_Unsubscribe": "<mailto:leave@lists.example.com>"}, rules.LIST),
    ({"X_Auto_Response_Suppress": "All"}, rules.SUPPRESS),
    ({"X_Auto_Response_Suppress": "DR, AutoReply"}, rules.SUPPRESS),
    ({"X_Auto_Response_Suppress": "OOF"}, rules.SUPPRESS),
    ({"X_Autoreply": "yes"}, rules.AUTOREPLY_HEADER),
    ({"X_Autorespond": "Vacation"}, rules.AUTOREPLY_HEADER),
    ({"Subject": "Automatic reply: Password reset"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Auto: Password reset"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Out of Office"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Out of Office AutoReply: help"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Autosvar: Passord"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Automatisk svar: Passord"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Fraværsmelding: Passord"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "Abwesenheitsnotiz: Passwort"}, rules.AUTOREPLY_SUBJECT),
    ({"Subject": "自动回复: 密码"}, rules.AUTOREPLY_SUBJECT),
    ({"Return_Path": "<>"}, rules.BOUNCE),
    ({"From": "MAILER-DAEMON@mx.customer.no"}, rules.BOUNCE),
    ({"From": "Mail Delivery System <postmaster@customer.no>", "Subject": "Delivery failure"}, rules.BOUNCE),
    ({"Subject": "Delivery Status Notification (Failure)"}, rules.BOUNCE),
    ({"Subject": "Undeliverable: Password reset"}, rules.BOUNCE),
    ({"X_Failed_Recipients": "gone@customer.no"}, rules.BOUNCE),
    ({"From": "noreply@shop.example"}, rules.NOREPLY),
    ({"From": "No-Reply <no-reply@shop.example>"}, rules.NOREPLY),
    ({"From": "donotreply@shop.example"}, rules.NOREPLY),
    ({"From": "do_not_reply@shop.example"}, rules.NOREPLY),
    ({"Reply_To": "noreply@shop.example"}, rules.NOREPLY),
    ({"From": "support@kb.example"}, rules.OWN_ADDRESS),
    ({"From": "SUPPORT@KB.EXAMPLE"}, rules.OWN_ADDRESS),
    ({"Reply_To": "support@kb.example"}, rules.OWN_ADDRESS),
])
def test_skip_rules(headers, expected):
    assert code(mail(**headers)) == expected


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "no"},
    {"Auto_Submitted": "No"},
    {"Precedence": "first-class"},
    {"X_Auto_Response_Suppress": "DR, NDR, RN, NRN"},
    {"X_Auto_Response_Suppress": "None"},
    {"X_Autoreply": "no"},
    {"Return_Path": "<kari@customer.no>"},
    {"Subject": "Automatic replies from our shared mailbox do not work"},
    {"Subject": "Out of office messages are not sent"},
    {"Subject": "Re: Password reset"},
    {"Subject": "Delivery of my order"},
    {"From": "norah@customer.no"},
    {"From": "replyguy@customer.no"},
    {"From": "noreply@forms.example", "Reply_To": "kari@customer.no"},
    {"From": "support@other.example"},
    {"From": "colleague@kb.example"},
    {"In_Reply_To": "<thread1@customer.no>", "References": "<a@mail.other.example>"},
])
def test_ordinary_mail_is_not_skipped(headers):
    assert reason(mail(**headers)) is None


def test_reason_has_code_and_human_detail():
    assert reason(mail(Auto_Submitted="auto-replied")) == "auto-submitted: Auto-Submitted: auto-replied"
    decision = rules.skip_decision(mail(Precedence="bulk"), support_address=SUPPORT, our_domain=DOMAIN)
    assert decision == rules.SkipDecision(rules.BULK, "Precedence: bulk")
    assert not decision.needs_person


def test_multipart_report_is_a_bounce():
    report = EmailMessage()
    report["From"] = "Mail System <mail@mx.customer.no>"
    report["Subject"] = "Your message"
    report.set_content("Your message could not be delivered.")
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b"')
    email = parse_message(bytes(report))
    assert email.is_multipart_report
    assert code(email) == rules.BOUNCE


@pytest.mark.parametrize("headers", [
    {"In_Reply_To": "<r1@kb.example>"},
    {"In_Reply_To": "<r1@KB.Example>"},
    {"References": "<orig@customer.no> <r1@kb.example>"},
    {"In_Reply_To": "<remembered@mail.example>"},
    {"References": "<remembered@mail.example>"},
])
def test_reply_to_our_reply_needs_a_person(headers):
    email = mail(**headers)
    decision = rules.skip_decision(email, support_address=SUPPORT, our_domain=DOMAIN,
                                   sent_message_ids={"<remembered@mail.example>"})
    assert decision is not None and decision.code == rules.REPLY_TO_OUR_REPLY
    assert decision.needs_person
    assert reason(email, sent_message_ids=["remembered@mail.example"]).startswith("reply-to-our-reply: ")


def test_an_out_of_office_answering_our_reply_is_skipped_not_routed():
    email = mail(In_Reply_To="<r1@kb.example>", Auto_Submitted="auto-replied")
    assert code(email) == rules.AUTO_SUBMITTED


def test_empty_domain_matches_no_message_id():
    email = mail(In_Reply_To="<x@>")
    assert rules.skip_reason(email, support_address=SUPPORT, our_domain="") is None


@pytest.mark.parametrize("entry", ["lists@partner.example", "@partner.example", " @PARTNER.example "])
def test_allow_list_bypasses_header_rules(entry):
    email = mail(From="Partner <lists@partner.example>", Precedence="bulk",
                 List_Id="<support.partner.example>", Auto_Submitted="auto-generated")
    assert code(email) == rules.AUTO_SUBMITTED
    assert reason(email, allow_list=[entry]) is None


def test_allow_list_does_not_match_other_senders():
    email = mail(From="other@partner.example.evil", Precedence="bulk")
    assert code(email, allow_list=["@partner.example"]) == rules.BULK


def test_allow_list_never_bypasses_loop_protection():
    own = mail(From="support@kb.example")
    assert code(own, allow_list=["support@kb.example", "@kb.example"]) == rules.OWN_ADDRESS
    thread = mail(From="kari@customer.no", In_Reply_To="<r1@kb.example>", Precedence="bulk")
    assert code(thread, allow_list=["kari@customer.no"]) == rules.REPLY_TO_OUR_REPLY


@pytest.mark.parametrize("url, host", [
    ("https://help.example.com/", "help.example.com"),
    ("http://Help.Example.com:8080/kb", "help.example.com"),
    ("help.example.com", "help.example.com"),
    ("", ""),
])
def test_domain_of_base_url(url, host):
    assert rules.domain_of_base_url(url) == host


# --- delivery reports: by structure, and subjects only in the servers' exact forms ----------------

def raw(head: str, body: str = "How do I reset my password?") -> ParsedEmail:
    """Parse a hand-written message: header lines (\n-separated), a blank line, the body."""
    base = "From: Kari Nordmann <kari@customer.no>\nTo: support@kb.example\nMessage-ID: <q2@customer.no>\n"
    return parse_message((base + head + "\n\n" + body).replace("\n", "\r\n").encode("utf-8"))


@pytest.mark.parametrize("headers", [
    {"Subject": "Delivery failure: my parcel never arrived"},
    {"Subject": "Failure notice on my card payment"},
    {"Subject": "Kan ikke leveres hjem?"},
    {"From": "Fitness Club <bounce.fitness@gym.example>"},
    {"Subject": "Returned mail: the shoes did not fit"},
    {"Subject": "Undelivered parcel - where is it?"},
    {"Subject": "Mail delivery failed for my invoice email"},
    {"From": "postmaster@customer.no", "Subject": "How do I change our plan?"},
])
def test_customer_questions_about_deliveries_are_answered(headers):
    assert reason(mail(**headers)) is None


@pytest.mark.parametrize("subject", [
    "Undelivered Mail Returned to Sender",                   # Postfix
    "Delivery Status Notification (Failure)",                # Gmail
    "Delivery Status Notification (Delay)",
    "Mail delivery failed: returning message to sender",     # Exim
    "Warning: message 1tXyZ-000Abc-12 delayed 24 hours",     # Exim
    "Returned mail: see transcript for details",             # Sendmail
    "Delayed Mail (still being retried)",                    # Postfix
    "failure notice",                                        # qmail
    "Failure Notice",                                        # Yahoo
    "Undeliverable: Password reset",                         # Exchange
    "Non remis : Password reset",
    "Unzustellbar: Passwort",
    "Kan ikke leveres: Passord",
    "系统退信",
])
def test_delivery_report_subjects_in_server_forms_are_skipped(subject):
    assert code(mail(Subject=subject)) == rules.BOUNCE


@pytest.mark.parametrize("head", [
    "Subject: Your message\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    "Content-Type: text/plain\n\nYour message could not be delivered.\n--b\n"
    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.no\n--b--",
    "Subject: Password reset\nReturn-Path: <>",
    "Subject: Password reset\nReturn-Path: < >",
    "Subject: Password reset\nReturn-Path:  <  >  ",
])
def test_delivery_reports_are_known_by_structure(head):
    assert code(raw(head)) == rules.BOUNCE


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.customer.no",
    "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
    "mailer_daemon@customer.no",
    "Mail Delivery System <Mailer-Daemon@mx.customer.no>",
    "double-bounce@mx.customer.no",
])
def test_mail_system_senders_are_bounces(sender):
    assert code(mail(From=sender)) == rules.BOUNCE


def test_postmaster_counts_only_with_a_report():
    assert code(mail(From="postmaster@customer.no", Subject="Delivery failure")) == rules.BOUNCE
    assert code(mail(From="postmaster@customer.no", Subject="Undeliverable: x")) == rules.BOUNCE
    assert reason(mail(From="postmaster@customer.no", Subject="Password reset")) is None


# --- automatic mail in more forms --------------------------------------------------------------

@pytest.mark.parametrize("headers, expected", [
    ({"Precedence": "auto_reply"}, rules.BULK),
    ({"List_Help": "<mailto:help@lists.example.com>"}, rules.LIST),
    ({"Mailing_List": "contact customers-help@lists.example.com; run by ezmlm"}, rules.LIST),
    ({"Subject": "Automatisch antwoord: Password reset"}, rules.AUTOREPLY_SUBJECT),     # nl
    ({"Subject": "Afwezig: Password reset"}, rules.AUTOREPLY_SUBJECT),                  # nl, old Outlook
    ({"Subject": "Fraværende: Password reset"}, rules.AUTOREPLY_SUBJECT),               # da
    ({"Subject": "Automatiskt svar: Lösenord"}, rules.AUTOREPLY_SUBJECT),               # sv
    ({"Subject": "Odpowiedź automatyczna: Hasło"}, rules.AUTOREPLY_SUBJECT),            # pl
    ({"Subject": "Automatyczna odpowiedź: Hasło"}, rules.AUTOREPLY_SUBJECT),            # pl
    ({"Subject": "Автоматический ответ: Пароль"}, rules.AUTOREPLY_SUBJECT),             # ru
    ({"Subject": "自動応答: パスワード"}, rules.AUTOREPLY_SUBJECT),                        # ja
    ({"Subject": "Automaattinen vastaus: Salasana"}, rules.AUTOREPLY_SUBJECT),          # fi
    ({"From": "info-noreply@shop.example"}, rules.NOREPLY),
    ({"From": "shop.noreply@shop.example"}, rules.NOREPLY),
    ({"From": "double-bounce@shop.example"}, rules.BOUNCE),
    ({"From": "support+tag@kb.example"}, rules.OWN_ADDRESS),
    ({"From": "Support <SUPPORT+Loop@Kb.Example>"}, rules.OWN_ADDRESS),
    ({"Reply_To": "support+x@kb.example"}, rules.OWN_ADDRESS),
    ({"X_Loop": "support@kb.example"}, rules.LOOP),
    ({"X_Loop": "Support+Autoreply@KB.example"}, rules.LOOP),
])
def test_more_automatic_mail_is_skipped(headers, expected):
    assert code(mail(**headers)) == expected


def test_quoted_own_address_is_ours():
    assert code(raw('Subject: Password reset\nReply-To: "support"@kb.example')) == rules.OWN_ADDRESS
    assert code(raw('Subject: Password reset\nReply-To: "Support+Robot"@KB.example')) == rules.OWN_ADDRESS
    quoted_sender = parse_message(b'From: "Support"@KB.example\r\nSubject: Password reset\r\n\r\nHi\r\n')
    assert code(quoted_sender) == rules.OWN_ADDRESS


@pytest.mark.parametrize("headers", [
    {"X_Loop": "someone@other.example"},
    {"Subject": "Afwezig op maandag, kan ik toch bestellen?"},
    {"Subject": "Poissa olen, mutta miten vaihdan salasanan?"},
    {"From": "supporter@kb.example"},
    {"From": "support@kb.example.evil"},
])
def test_lookalikes_of_automatic_mail_are_answered(headers):
    assert reason(mail(**headers)) is None
