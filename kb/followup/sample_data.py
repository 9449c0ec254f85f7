"""The sample stories: nine customers (en, zh, nb) and an article's readers over six weeks.

Together they give every case state (new twice, one of them past the acknowledgement deadline;
acknowledged, contacted, resolved, reopened) and every source (vote, still_need_help, writeback,
survey, manual), answered surveys of 5, 4, 4 and 2 and two unanswered, and one customer who wrote
again after a resolved case. Addresses are on example.com/.net/.org (reserved by RFC 2606; example.no is not)
and phone numbers in the ranges set aside for fiction (+1 202 555 01xx, +44 20 7946 0xxx).
"""

from __future__ import annotations

from datetime import timedelta

from kb.followup.sample_builder import ALERT_DELAY, Builder


def minutes(n: float) -> timedelta:
    """A few minutes, to place one step after another."""
    return timedelta(minutes=n)


def sofia(b: Builder) -> None:
    """A "No" vote with a comment three minutes ago: new, waiting. Earlier, an email she marked solved."""
    customer = b.customer("Sofia Lind", "sofia.lind@example.com", "en", b.ago(days=30), phone="+1 202 555 0143")
    b.email("sofia.lind@example.com", "Can I change my delivery address?",
            "Hi, I ordered a rain jacket yesterday and I'm moving on Friday. Can I still change the address?",
            b.ago(days=9), answer="change-or-cancel-order", click="solved", click_at=b.ago(days=9, minutes=-20))
    article, at = b.article("track-order"), b.ago(minutes=3)
    words = "The tracking link has said 'label created' for five days now. Is my parcel lost?"
    b.vote(article, at, "not_answered", words)
    case = b.case("vote", at, customer=customer, article=article)
    b.signal(case, "vote", at, words=words, reason="not_answered")


def marcus(b: Builder) -> None:
    """"Still need help" after an auto-reply, 40 minutes ago: new, past the deadline, escalated."""
    customer = b.customer("Marcus Webb", "marcus.webb@example.net", "en", b.ago(minutes=52))
    text = "I returned two pairs of boots three weeks ago and the refund is still not on my card."
    mail = b.email("marcus.webb@example.net", "Refund still not on my card", text, b.ago(minutes=52),
                   answer="refund-timelines", click="still_need_help", click_at=b.ago(minutes=40))
    case = b.case("still_need_help", b.ago(minutes=40), customer=customer, article=b.article("refund-timelines"),
                  thread=mail)
    b.signal(case, "still_need_help", b.ago(minutes=40), words=text, channel="email", mail=mail)


def wang_fang(b: Builder) -> None:
    """Wrote back into a thread kb answered (zh): acknowledged, a chat noted."""
    customer = b.customer("王芳", "wang.fang@example.com", "zh", b.ago(hours=5))
    first = b.email("wang.fang@example.com", "包裹还在海关", "我的订单寄到上海，物流显示在海关，需要多久？",
                    b.ago(hours=5), lang="zh", answer="zh-shipping-china")
    text = "谢谢，但是我的包裹已经在海关停了十天了。我需要联系谁？"
    again = b.email("wang.fang@example.com", "Re: 包裹还在海关", text, b.ago(hours=3), lang="zh",
                    reason=f"reply-to-our-reply: answers kb's message {first.reply_message_id}")
    case = b.case("writeback", b.ago(hours=3), customer=customer, article=b.article("zh-shipping-china"), thread=again)
    b.signal(case, "writeback", b.ago(hours=3), words=text, channel="email", mail=again)
    b.move(case, "acknowledged", b.ago(hours=2, minutes=53), "Checking with the courier in Shanghai.")
    b.event(case, "note", b.ago(hours=2), "She asked in the chat as well; told her we are checking with the "
            "courier and will write today.", channel="chat")


def ingrid(b: Builder) -> None:
    """A refund case resolved 12 days ago, its survey answered 2 ten days later: a new case, contacted by phone."""
    address = "ingrid.haugen@example.org"
    customer = b.customer("Ingrid Haugen", address, "nb", b.ago(days=13))
    text = "Jeg returnerte en jakke for to uker siden, men har ikke fått pengene tilbake."
    mail = b.email(address, "Refusjon for returnert jakke", text, b.ago(days=13), lang="nb", answer="nb-refusjon",
                   click="still_need_help", click_at=b.ago(days=13, hours=-1))
    first = b.case("still_need_help", b.ago(days=13, hours=-1), customer=customer, article=b.article("nb-refusjon"),
                   thread=mail)
    b.signal(first, "still_need_help", first.opened_at, words=text, channel="email", mail=mail)
    b.move(first, "acknowledged", b.ago(days=13, hours=-1, minutes=-8), "Looking up the return.")
    b.message(first, b.ago(days=13, hours=-2), "Hei Ingrid,\n\nreturen din er registrert, og refusjonen er sendt "
              "til banken i dag. Det kan ta 3-5 virkedager.\n\nHilsen Fjellstad kundeservice")
    b.move(first, "resolved", b.ago(days=12), "The refund was stuck in the payment provider; sent it by hand.",
           root_cause="billing")
    answered = b.ago(days=2)
    b.survey(first, address, b.ago(days=11), answered=answered, score=2,
             comment="Pengene kom, men det tok nesten tre uker.")
    # Answered after the 7 days in which a low score reopens the case: a new case, as kb does it.
    second = b.case("survey", answered, customer=customer)
    b.signal(second, "survey", answered, words="Pengene kom, men det tok nesten tre uker.", score=2, channel="email")
    b.move(second, "acknowledged", answered + minutes(6), "Will call her.")
    b.event(second, "note", b.ago(days=1), "Called her: apologised for the wait and offered a 200 kr gift card, "
            "which she accepted.", channel="phone", outcome="Gift card accepted")
    b.move(second, "contacted", b.ago(days=1), "Phoned the customer.")


def tom(b: Builder) -> None:
    """A broken zip, resolved four days ago; the replacement is broken too: reopened ten minutes ago."""
    address = "tom.becker@example.com"
    customer = b.customer("Tom Becker", address, "en", b.ago(days=6), phone="+1 202 555 0178")
    text = "My new jacket arrived with a broken zip. What now?"
    mail = b.email(address, "Jacket arrived with a broken zip", text, b.ago(days=6), answer="damaged-item",
                   click="still_need_help", click_at=b.ago(days=6, hours=-2))
    case = b.case("still_need_help", mail.resolved_at, customer=customer, article=b.article("damaged-item"),
                  thread=mail)
    b.signal(case, "still_need_help", mail.resolved_at, words=text, channel="email", mail=mail)
    b.move(case, "acknowledged", mail.resolved_at + minutes(9), "")
    sent = b.message(case, b.ago(days=6, hours=-3), "Hi Tom,\n\nsorry about the zip. A replacement jacket is on its "
              "way; keep the broken one, no need to send it back.\n\nBest regards, Fjellstad support")
    b.move(case, "resolved", b.ago(days=4), "Replacement sent.", root_cause="product")
    b.survey(case, address, b.ago(days=3))
    again_text = "The replacement jacket has exactly the same problem: the zip came off the first time I used it."
    again = b.email(address, "Re: Jacket arrived with a broken zip", again_text, b.ago(minutes=10),
                    reason=f"reply-to-our-reply: answers kb's message {sent.message_id}")
    b.signal(case, "writeback", b.ago(minutes=10), words=again_text, channel="email", mail=again)
    b.move(case, "reopened", b.ago(minutes=10), "Reopened: the customer was unhappy again (writeback).")
    b.event(case, "alert", b.ago(minutes=10) + ALERT_DELAY, "The team was alerted.", channel="email")


def amara(b: Builder) -> None:
    """Phoned five weeks ago: a case opened by hand, resolved, survey answered 5; later seen in the shop."""
    address = "amara.okafor@example.net"
    customer = b.customer("Amara Okafor", address, "en", b.ago(days=35), phone="+44 20 7946 0321")
    at = b.ago(days=35)
    case = b.case("manual", at, customer=customer, article=b.article("mobile-app"))
    b.signal(case, "manual", at, channel="phone", words="Called: the app logs her out every time she opens it, "
             "also after reinstalling it.")
    b.move(case, "acknowledged", at + minutes(3), "Opened during the call.")
    b.event(case, "note", at + minutes(4), "Walked her through signing out on all devices; still logged out. "
            "Passed to the app team.", channel="phone", outcome="Not solved on the call")
    b.move(case, "contacted", at + minutes(4), "On the phone with the customer.")
    b.move(case, "resolved", b.ago(days=34), "App update 4.2.1 fixes the log-out; she confirmed it works.",
           root_cause="product")
    b.survey(case, address, b.ago(days=33), answered=b.ago(days=33, hours=-3), score=5,
             comment="Quick and friendly, thank you!")
    b.event(None, "note", b.ago(days=20), "Picked up a click-and-collect order in the shop; says the app has "
            "worked fine since the update.", customer=customer, channel="in_person")


def li_ming(b: Builder) -> None:
    """A "No" vote (hard to follow) on the zh refund article: resolved by fixing the article, survey 4."""
    address = "li.ming@example.net"
    customer = b.customer("李明", address, "zh", b.ago(days=23))
    article, at = b.article("zh-refund"), b.ago(days=23)
    words = "退货地址在哪里？文章里没有写清楚。"
    b.vote(article, at, "hard_to_follow", words)
    case = b.case("vote", at, customer=customer, article=article)
    b.signal(case, "vote", at, words=words, reason="hard_to_follow")
    b.move(case, "acknowledged", at + minutes(6), "")
    b.message(case, b.ago(days=23, hours=-1), "李明您好，\n\n退货地址已经加到文章里了。谢谢您的提醒！\n\nFjellstad 客服")
    b.move(case, "resolved", b.ago(days=22), "Added the return address to the article.", root_cause="article")
    b.survey(case, address, b.ago(days=21), answered=b.ago(days=20), score=4)


def lars(b: Builder) -> None:
    """"Still need help" about a late parcel, acknowledged late (escalated), resolved; survey unanswered."""
    address = "lars.nilsen@example.org"
    customer = b.customer("Lars Nilsen", address, "nb", b.ago(days=16))
    text = "Pakken min skulle komme i går, men sporingen har ikke endret seg på fire dager."
    mail = b.email(address, "Hvor er pakken min?", text, b.ago(days=16, hours=1), lang="nb", answer="nb-levering",
                   click="still_need_help", click_at=b.ago(days=16))
    case = b.case("still_need_help", b.ago(days=16), customer=customer, article=b.article("nb-levering"), thread=mail)
    b.signal(case, "still_need_help", b.ago(days=16), words=text, channel="email", mail=mail)
    b.move(case, "acknowledged", b.ago(days=16) + minutes(38), "Sorry, busy morning. Asking the courier.")
    b.message(case, b.ago(days=16, hours=-3), "Hei Lars,\n\npakken ble forsinket på terminalen i Trondheim og "
              "kommer i morgen.\n\nHilsen Fjellstad kundeservice")
    b.move(case, "resolved", b.ago(days=15), "Delivered the next day.", root_cause="delivery")
    b.survey(case, address, b.ago(days=14))


def emma(b: Builder) -> None:
    """Wrote back six weeks ago about a discount code: resolved by phone, survey 4; wrote again since."""
    address = "emma.clarke@example.com"
    customer = b.customer("Emma Clarke", address, "en", b.ago(days=42))
    first = b.email(address, "Discount code not working", "My code SUMMER20 says invalid at checkout.",
                    b.ago(days=42), answer="discount-codes")
    text = "I read the article, the code is still 'invalid' and it expires tomorrow."
    again = b.email(address, "Re: Discount code not working", text, b.ago(days=41, hours=23),
                    reason=f"reply-to-our-reply: answers kb's message {first.reply_message_id}")
    case = b.case("writeback", again.created_at, customer=customer, article=b.article("discount-codes"), thread=again)
    b.signal(case, "writeback", again.created_at, words=text, channel="email", mail=again)
    b.move(case, "acknowledged", again.created_at + minutes(5), "")
    b.event(case, "note", again.created_at + minutes(25), "Called her: the code was limited to one use and her first "
            "try had failed at payment. Issued a new code.", channel="phone", outcome="New code issued")
    b.move(case, "contacted", again.created_at + minutes(25), "Phoned the customer.")
    b.move(case, "resolved", b.ago(days=41), "Codes used in a failed payment now count as unused.",
           root_cause="billing")
    b.survey(case, address, b.ago(days=40), answered=b.ago(days=39), score=4, comment="Sorted in the end.")
    b.email(address, "Gift card balance", "How do I check what is left on my gift card?", b.ago(days=12),
            answer="gift-cards", click="solved", click_at=b.ago(days=12, minutes=-15))


def delivery_article(b: Builder) -> None:
    """A "No" vote without an address: a case about the article, for its author; fixed."""
    article, at = b.article("delivery-times"), b.ago(days=9)
    if article is None:  # without the starter article there is nothing this case could be about
        return
    words = "The delivery times for Germany are wrong since you changed courier."
    b.vote(article, at, "out_of_date", words)
    case = b.case("vote", at, article=article)
    b.signal(case, "vote", at, words=words, reason="out_of_date")
    b.move(case, "acknowledged", at + minutes(12), "")
    b.move(case, "resolved", b.ago(days=8), "Updated the table for Germany.", root_cause="article")


STORIES = (sofia, marcus, wang_fang, ingrid, tom, amara, li_ming, lars, emma, delivery_article)
