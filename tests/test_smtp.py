"""kb.autoreply.smtp.send against a real SMTP server (aiosmtpd in the test process)."""

from __future__ import annotations

from email import message_from_bytes, message_from_string, policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from kb.autoreply.smtp import SendFailed, SendRefused, SendUncertain, send
from kb.errors import ConfigError


def make_reply(to: str = "Customer <customer@example.com>") -> EmailMessage:
    """A small auto-reply-like message."""
    message = EmailMessage()
    message["From"] = "Support <support@kb.example>"
    message["To"] = to
    message["Subject"] = "Re: printer"
    message["Message-ID"] = "<abc@kb.example>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("Try these articles: løsning 解决")
    return message


def test_send_delivers_to_the_recipient_with_the_support_envelope_sender(smtp_sink):
    send(make_reply(), smtp_sink.settings(SUPPORT_ADDRESS="support@kb.example"))
    [mail] = smtp_sink.wait_for(1)
    assert mail.mail_from == "support@kb.example"
    assert mail.rcpt_tos == ["customer@example.com"]
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert parsed["Message-ID"] == "<abc@kb.example>" and parsed["Auto-Submitted"] == "auto-replied"
    assert "løsning 解决" in parsed.get_content()
    assert mail.auth_login is None


def test_send_logs_in_when_a_user_is_set(smtp_sink_factory):
    sink = smtp_sink_factory(user="kb", password="s3cret")
    send(make_reply(), sink.settings())
    [mail] = sink.wait_for(1)
    assert mail.auth_login == "kb"


def test_wrong_smtp_password_fails_with_a_clear_reason(smtp_sink_factory):
    sink = smtp_sink_factory(user="kb", password="s3cret")
    with pytest.raises(SendFailed, match="refused the login of 'kb'.*KB_SMTP_PASSWORD"):
        send(make_reply(), sink.settings(SMTP_PASSWORD="wrong"))
    assert sink.messages == []


def test_server_requiring_auth_refuses_without_it(smtp_sink_factory):
    sink = smtp_sink_factory(user="kb", password="s3cret")
    with pytest.raises(SendFailed, match="refused the message"):
        send(make_reply(), sink.settings(SMTP_USER=""))


def test_stopped_server_raises_send_failed_then_works_again(smtp_sink):
    smtp_sink.stop()
    with pytest.raises(SendFailed, match="Cannot reach the SMTP server"):
        send(make_reply(), smtp_sink.settings())
    smtp_sink.start()
    send(make_reply(), smtp_sink.settings())
    assert len(smtp_sink.wait_for(1)) == 1


def test_temporary_refusal_raises_send_failed_with_the_server_reply(smtp_sink):
    smtp_sink.refuse = "451 4.3.0 Try again later"
    with pytest.raises(SendFailed, match="451"):
        send(make_reply(), smtp_sink.settings())
    smtp_sink.refuse = None
    send(make_reply(), smtp_sink.settings())
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_break_after_data_is_uncertain_not_a_failure(smtp_sink):
    # The sink keeps the message, then answers too late: the client cannot know it was
    # delivered, so it must not report a plain failure (which the worker would retry).
    smtp_sink.reply_delay = 1.0
    with pytest.raises(SendUncertain, match="broke after the message was sent"):
        send(make_reply(), smtp_sink.settings(), timeout=0.3)
    assert len(smtp_sink.wait_for(1)) == 1  # it did arrive


def test_an_odd_answer_to_quit_after_delivery_is_not_a_failure(smtp_sink):
    # The message was accepted; reporting a failure would make the worker send it again.
    smtp_sink.quit_reply = "250 odd but harmless"
    send(make_reply(), smtp_sink.settings())
    assert len(smtp_sink.wait_for(1)) == 1


def test_message_without_recipient_is_refused_before_connecting(smtp_sink):
    with pytest.raises(SendFailed, match="no recipient"):
        send(make_reply(to=""), smtp_sink.settings())


def test_bad_smtp_settings_are_config_errors():
    with pytest.raises(ConfigError, match="KB_SMTP_SECURITY"):
        send(make_reply(), {"SMTP_HOST": "localhost", "SMTP_SECURITY": "tls"})
    with pytest.raises(ConfigError, match="KB_SMTP_HOST"):
        send(make_reply(), {})


def test_starttls_with_auth(smtp_sink_factory, tls_certificate):
    sink = smtp_sink_factory(user="kb", password="s3cret", tls_context=tls_certificate.server_context())
    send(make_reply(), sink.settings(SMTP_SECURITY="starttls"), ssl_context=tls_certificate.client_context())
    [mail] = sink.wait_for(1)
    assert mail.auth_login == "kb"


def test_plain_connection_to_a_starttls_only_server_is_refused(smtp_sink_factory, tls_certificate):
    sink = smtp_sink_factory(user="kb", password="s3cret", tls_context=tls_certificate.server_context())
    with pytest.raises(SendFailed):  # AUTH is only offered after STARTTLS
        send(make_reply(), sink.settings(SMTP_SECURITY="none"))
    assert sink.messages == []


def test_implicit_ssl(smtp_sink_factory, tls_certificate):
    sink = smtp_sink_factory(tls_context=tls_certificate.server_context(), implicit_tls=True)
    send(make_reply(), sink.settings(SMTP_SECURITY="ssl"), ssl_context=tls_certificate.client_context())
    assert len(sink.wait_for(1)) == 1


def test_untrusted_smtp_certificate_is_refused(smtp_sink_factory, tls_certificate):
    sink = smtp_sink_factory(tls_context=tls_certificate.server_context())
    with pytest.raises(SendFailed, match="certificate verify failed"):
        send(make_reply(), sink.settings(SMTP_SECURITY="starttls"))
    assert sink.messages == []


@pytest.mark.parametrize("where, answer, final", [
    ("rcpt", "550 5.1.1 <customer@example.com>: no such user here", True),
    ("data", "552 5.3.4 Message size exceeds fixed limit", True),
    ("data", "554 5.7.1 Message rejected as spam", True),
    ("rcpt", "450 4.2.1 mailbox busy, try later", False),
    ("data", "451 4.3.0 Try again later", False),
    ("data", "421 4.3.2 Service shutting down", False),
])
def test_5xx_refusals_are_final_4xx_can_be_retried_both_with_the_servers_answer(smtp_sink, where, answer, final):
    setattr(smtp_sink, "refuse_rcpt" if where == "rcpt" else "refuse", answer)
    with pytest.raises(SendFailed) as failed:
        send(make_reply(), smtp_sink.settings())
    assert isinstance(failed.value, SendRefused) == final
    assert answer in str(failed.value) and f"{smtp_sink.host}:{smtp_sink.port}" in str(failed.value)
    assert smtp_sink.messages == []


def international_reply() -> EmailMessage:
    """A reply whose recipient has a non-ASCII local part, written with the email package's address objects."""
    message = make_reply(to="")
    del message["To"]
    message["To"] = Address("Jürgen Müller", "jürgen", "example.com")
    return message


def test_a_non_ascii_local_part_without_smtputf8_is_refused_with_a_clear_reason(smtp_sink):
    with pytest.raises(SendRefused, match="jürgen@example.com.*SMTPUTF8"):
        send(international_reply(), smtp_sink.settings())
    assert smtp_sink.messages == []


def test_a_non_ascii_local_part_goes_out_when_the_server_announces_smtputf8(smtp_sink_factory):
    sink = smtp_sink_factory(smtputf8=True)
    send(international_reply(), sink.settings())
    [mail] = sink.wait_for(1)
    assert mail.rcpt_tos == ["jürgen@example.com"]
    received = message_from_string(mail.data.decode("utf-8"), policy=policy.default)  # SMTPUTF8: raw UTF-8
    assert received["To"].addresses[0].display_name == "Jürgen Müller"
