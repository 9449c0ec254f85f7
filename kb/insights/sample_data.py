"""The words of the sample insights (kb.insights.sample): what the sample shop's customers searched
for and asked, in English, Chinese and Norwegian, fitting the starter articles in articles/.
"""

from __future__ import annotations

# (language, query, the starter article it finds or None when kb has no article for it, weight)
QUERIES = (
    ("en", "where is my order", "track-order", 40), ("en", "track my parcel", "track-order", 22),
    ("en", "order tracking number", "track-order", 12), ("en", "return an item", "return-an-item", 30),
    ("en", "how to return jacket", "return-an-item", 14), ("en", "refund", "refund-timelines", 26),
    ("en", "when do i get my refund", "refund-timelines", 18), ("en", "reset password", "reset-password", 24),
    ("en", "forgot password", "reset-password", 16), ("en", "size guide", "size-guide", 20),
    ("en", "what size should i buy", "size-guide", 11), ("en", "shipping cost", "shipping-costs", 15),
    ("en", "free shipping", "shipping-costs", 9), ("en", "delivery time", "delivery-times", 17),
    ("en", "cancel order", "change-or-cancel-order", 15), ("en", "change my order", "change-or-cancel-order", 8),
    ("en", "discount code not working", "discount-codes", 12), ("en", "gift card balance", "gift-cards", 9),
    ("en", "payment failed", "failed-payment", 10), ("en", "pay later invoice", "invoice-pay-later", 8),
    ("en", "customs fee", "international-shipping-customs", 9), ("en", "exchange size", "exchanges", 11),
    ("en", "item arrived damaged", "damaged-item", 8), ("en", "wrong item in parcel", "missing-or-wrong-item", 7),
    ("en", "click and collect", "click-and-collect", 6), ("en", "warranty zip broken", "warranty-and-repairs", 7),
    ("en", "wash waterproof jacket", "waterproof-jacket-care", 6), ("en", "club points", "earn-and-use-points", 7),
    ("en", "member prices", "member-prices", 4), ("en", "change email address", "change-email", 5),
    ("en", "delete my account", "delete-account", 4), ("en", "two step verification", "two-step-verification", 3),
    ("en", "back in stock", "restock-alerts", 6), ("en", "payment methods", "payment-methods", 6),
    ("en", "app login", "mobile-app", 3),
    ("en", "student discount", None, 9), ("en", "price match", None, 7), ("en", "store opening hours", None, 8),
    ("en", "ski rental", None, 4), ("en", "gore-tex vs softshell", None, 3), ("en", "bike repair", None, 2),
    ("zh", "我的订单在哪里", "zh-track-order", 10), ("zh", "物流查询", "zh-track-order", 7),
    ("zh", "退款多久到账", "zh-refund", 8), ("zh", "申请退款", "zh-refund", 5),
    ("zh", "忘记密码", "zh-reset-password", 6), ("zh", "尺码表", "zh-size-guide", 5),
    ("zh", "寄到中国要多久", "zh-shipping-china", 6), ("zh", "发票抬头", None, 3), ("zh", "支付宝付款", None, 4),
    ("nb", "retur av vare", "nb-retur", 10), ("nb", "returnere jakke", "nb-retur", 5),
    ("nb", "når får jeg pengene tilbake", "nb-refusjon", 7), ("nb", "glemt passord", "nb-passord", 6),
    ("nb", "leveringstid", "nb-levering", 6), ("nb", "bli medlem", "nb-fjellstad-club", 4),
    ("nb", "åpningstider butikk", None, 4), ("nb", "studentrabatt", None, 3),
)

# What a customer writes when the search did not do (subject, question), per language.
QUESTIONS = {
    "en": (("Where is my parcel?", "My order has said 'shipped' for five days and the tracking link shows nothing."),
           ("Refund not received", "I returned a jacket two weeks ago and the money is not back on my card yet."),
           ("Wrong size", "The boots are too small. Can I swap them for a size 43 instead of returning them?"),
           ("Discount code", "The code from your newsletter says it is not valid at checkout."),
           ("Password reset", "The reset email never arrives. I checked the spam folder too."),
           ("Student discount?", "Do you have a student discount, and how do I prove I am a student?"),
           ("Damaged backpack", "The zip of the backpack I got yesterday is torn. What do I do?")),
    "zh": (("订单物流", "我的订单已经一周了，物流信息一直没有更新。"),
           ("退款问题", "我上周退回了商品，请问退款什么时候到账？"),
           ("发票", "请问可以开具公司抬头的发票吗？")),
    "nb": (("Retur", "Jeg vil returnere en jakke jeg kjøpte for tre uker siden. Hvordan gjør jeg det?"),
           ("Pengene tilbake", "Jeg sendte varen tilbake for ti dager siden og har ikke fått pengene."),
           ("Åpningstider", "Når har butikken i Trondheim åpent i julen?")),
}

# "No" votes: (reason, comment) — kb.followup.models.VOTE_REASONS.
NO_VOTES = (
    ("not_answered", "It does not say which size to pick between two sizes."),
    ("out_of_date", "The size table is for last year's models."),
    ("hard_to_follow", "Too many numbers, I could not find my size."),
    ("not_answered", "Nothing about children's sizes."),
    ("other", ""),
    ("not_answered", "How long exactly? It says 'a few days'."),
    ("hard_to_follow", ""),
)

# (slug, votes, helpful votes): size-guide is flagged (>= 10 votes, under 60 % helpful).
VOTES = (("size-guide", 16, 6), ("refund-timelines", 12, 8), ("track-order", 14, 12), ("return-an-item", 9, 8),
         ("reset-password", 6, 5), ("zh-track-order", 4, 3), ("nb-retur", 5, 4), ("shipping-costs", 3, 1))

# (slug, review by, in days from today): size-guide is overdue.
REVIEWS = (("size-guide", -12), ("refund-timelines", 20), ("shipping-costs", 45), ("track-order", 120))

# Names of sample senders (repeating, as real customers write again), on RFC 2606 example.* domains.
SENDERS = ("kari.nordmann", "ola.hansen", "emma.berg", "li.wei", "zhang.min", "tom.baker", "sara.ahmed",
           "jonas.lie", "ingrid.dahl", "marco.rossi", "anna.svensson", "wang.fang", "lars.holm", "mia.olsen")
