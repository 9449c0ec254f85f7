"""Every sentence of the emails kb writes (the auto-reply and the team alert), one table per language.

Kept apart from the code that builds the messages so the tables can move to the translation
catalogs as they are: whole sentences, named placeholders, no pieces glued together. The reply
speaks the customer's language (en when kb has no table for it); the alert speaks
KB_DEFAULT_LANGUAGE. The subject prefix stays "Re: " in every language, as RFC 5322 3.6.5 asks.
"""

from __future__ import annotations

from kb.autoreply.textproc import normalise_lang

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "subject_prefix": "Re: ",
        "subject": "Your question to support",
        "sender_name": "Customer support",
        "hello": "Hello,",
        "hello_name": "Hello {name},",
        "quote_label": "You wrote:",
        "intro": "Thank you for your email. These articles may answer your question:",
        "ask": "Did this solve it? Let us know with one click:",
        "solved": "Solved",
        "help": "Still need help",
        "note": "This is an automatic reply. If the articles do not help, choose \"Still need help\" "
                "and a person from our team will answer you.",
        "sign": "Customer support",
        "alert_subject": "[kb] Still need help: {subject}",
        "alert_no_subject": "(no subject)",
        "alert_intro": "{sender} clicked \"Still need help\" after kb's auto-reply. Please answer them.",
        "alert_received": "Received: {received} UTC",
        "alert_wrote": "What they wrote:",
        "alert_no_text": "(the text was not kept)",
        "alert_suggested": "What kb suggested:",
        "alert_suggestion": "{title} (score {score}) {url}",
        "alert_no_suggestion": "(none)",
        "alert_all": "All of kb's mail decisions: {url}",
    },
    "zh": {
        "subject_prefix": "Re: ",
        "subject": "您的咨询",
        "sender_name": "客户支持",
        "hello": "您好，",
        "hello_name": "{name}，您好：",
        "quote_label": "您的来信：",
        "intro": "感谢您的来信。以下文章或许能解答您的问题：",
        "ask": "问题解决了吗？请点击告诉我们：",
        "solved": "已解决",
        "help": "仍需帮助",
        "note": "这是一封自动回复邮件。如果这些文章没有帮助，请点击“仍需帮助”，我们的工作人员会回复您。",
        "sign": "客户支持",
        "alert_subject": "[kb] 仍需帮助：{subject}",
        "alert_no_subject": "（无主题）",
        "alert_intro": "{sender} 在收到 kb 的自动回复后点击了“仍需帮助”。请回复这位客户。",
        "alert_received": "收到时间：{received} UTC",
        "alert_wrote": "客户来信：",
        "alert_no_text": "（未保留原文）",
        "alert_suggested": "kb 推荐的文章：",
        "alert_suggestion": "{title}（得分 {score}）{url}",
        "alert_no_suggestion": "（无）",
        "alert_all": "kb 处理过的全部邮件：{url}",
    },
    "nb": {
        "subject_prefix": "Re: ",
        "subject": "Spørsmålet ditt til kundeservice",
        "sender_name": "Kundeservice",
        "hello": "Hei,",
        "hello_name": "Hei {name},",
        "quote_label": "Du skrev:",
        "intro": "Takk for e-posten din. Disse artiklene kan svare på spørsmålet ditt:",
        "ask": "Ble problemet løst? Gi oss beskjed med ett klikk:",
        "solved": "Løst",
        "help": "Trenger fortsatt hjelp",
        "note": "Dette er et automatisk svar. Hvis artiklene ikke hjelper, velg «Trenger fortsatt hjelp», "
                "så svarer en av oss deg.",
        "sign": "Kundeservice",
        "alert_subject": "[kb] Trenger fortsatt hjelp: {subject}",
        "alert_no_subject": "(uten emne)",
        "alert_intro": "{sender} valgte «Trenger fortsatt hjelp» etter det automatiske svaret fra kb. "
                       "Svar kunden.",
        "alert_received": "Mottatt: {received} UTC",
        "alert_wrote": "Dette skrev kunden:",
        "alert_no_text": "(teksten ble ikke tatt vare på)",
        "alert_suggested": "Dette foreslo kb:",
        "alert_suggestion": "{title} (poeng {score}) {url}",
        "alert_no_suggestion": "(ingen)",
        "alert_all": "Alle e-postbeslutningene til kb: {url}",
    },
}


def template_lang(lang: str | None) -> str:
    """The language of an email kb writes: ``lang`` when there is a table for it ("no" is nb), else en."""
    code = normalise_lang(lang) or ""
    return code if code in TEXTS else "en"


def texts_for(lang: str | None) -> dict[str, str]:
    """The table of sentences for ``lang`` (see template_lang)."""
    return TEXTS[template_lang(lang)]
