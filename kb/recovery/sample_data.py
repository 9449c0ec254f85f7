"""The sample shop's starter gesture types, bounds and offers (loaded by kb.recovery.sample).

The shop is Fjellstad, as in the follow-up sample (kb/followup/sample_data.py); it prices in EUR.
Each template has an English default and zh and nb versions, with kb's placeholders only
(kb.recovery.wording.PLACEHOLDERS).
"""

from __future__ import annotations

from decimal import Decimal

EN_END, ZH_END, NB_END = ("\n\nKind regards,\n{agent}, Fjellstad support", "\n\n{agent}\nFjellstad 客服",
                          "\n\nVennlig hilsen\n{agent}, Fjellstad kundeservice")

# name, kind, currency, needs_reference, (en, zh, nb) message before its sign-off
GESTURES = (
    ("Apology", "apology", "", False, (
        "Dear {name},\n\nI am sorry about what happened: that is not how shopping with us should be. Thank you for "
        "telling us, and for your patience while we put it right.",
        "{name}您好，\n\n对于这次给您带来的不便，我们深表歉意。这不是我们希望您得到的体验。感谢您告诉我们，也感谢您的耐心。",
        "Hei {name},\n\nbeklager det som skjedde – slik skal det ikke være å handle hos oss. Takk for at du sa fra, "
        "og for tålmodigheten mens vi ordner det.")),
    ("10 % discount", "discount_percent", "", True, (
        "Dear {name},\n\nsorry for the trouble. As a thank-you for your patience, here is {amount} % off your next "
        "order with the code {reference} (valid for 90 days).",
        "{name}您好，\n\n很抱歉给您添麻烦了。为感谢您的耐心，您下次购物时可使用优惠码 {reference} 享受 {amount}% 的折扣"
        "（90 天内有效）。",
        "Hei {name},\n\nbeklager bryet. Som takk for tålmodigheten får du {amount} % rabatt på neste bestilling med "
        "koden {reference} (gyldig i 90 dager).")),
    ("Store credit", "fixed_credit", "EUR", True, (
        "Dear {name},\n\nsorry that this went wrong. We have added {amount} {currency} of store credit to your "
        "account (reference {reference}); it is used automatically at your next checkout.",
        "{name}您好，\n\n很抱歉出现了这个问题。我们已在您的账户中添加了 {amount} {currency} 的购物余额（编号 {reference}），"
        "下次结账时会自动使用。",
        "Hei {name},\n\nbeklager at dette gikk galt. Vi har satt inn {amount} {currency} i tilgodehavende på kontoen "
        "din (referanse {reference}); beløpet trekkes automatisk ved neste kjøp.")),
    ("Free shipping on next order", "free_shipping", "EUR", True, (
        "Dear {name},\n\nsorry for the inconvenience. Your next order ships free: use the code {reference} at "
        "checkout.",
        "{name}您好，\n\n给您带来不便，非常抱歉。您的下一笔订单免运费：结账时请使用代码 {reference}。",
        "Hei {name},\n\nbeklager ulempen. Neste bestilling sendes gratis: bruk koden {reference} i kassen.")),
    ("Refund of shipping", "shipping_refund", "EUR", True, (
        "Dear {name},\n\nsorry that your order did not arrive as promised. We have refunded the shipping cost of "
        "{amount} {currency} to your original payment method (refund reference {reference}); it shows within 3-5 "
        "working days.",
        "{name}您好，\n\n很抱歉您的订单没有按承诺送达。我们已将 {amount} {currency} 的运费退还到您的原支付方式"
        "（退款编号 {reference}），3 至 5 个工作日内到账。",
        "Hei {name},\n\nbeklager at bestillingen ikke kom som lovet. Vi har refundert fraktkostnaden på {amount} "
        "{currency} til betalingsmåten du brukte (refusjonsreferanse {reference}); den vises innen 3–5 virkedager.")),
    ("Small gift", "gift", "EUR", False, (
        "Dear {name},\n\nsorry again for the trouble. A small gift from us travels with your next parcel – we hope "
        "it brings back a smile.",
        "{name}您好，\n\n再次为给您带来的麻烦致歉。我们准备了一份小礼物，会随您的下一个包裹一起寄出，希望能让您开心一些。",
        "Hei {name},\n\nbeklager igjen bryet. En liten gave fra oss følger med neste pakke – vi håper den gjør "
        "dagen litt bedre.")),
)

# scope, gesture type name (None: overall), max amount, max count, approver role
BOUNDS = (
    ("per_incident", None, Decimal("25"), 2, "admin"),
    ("agent_week", None, Decimal("150"), 10, "admin"),
    ("customer_90d", None, Decimal("60"), None, "admin"),
    ("per_incident", "10 % discount", Decimal("15"), None, "support"),
    ("agent_week", "Small gift", None, 5, "support"),
)

# Who offered the sample gestures: inactive, so they never log in nor get an email (.invalid takes no mail).
AGENTS = {"nora": ("Nora Berg (sample)", "nora.berg@sample.invalid"),
          "jonas": ("Jonas Weber (sample)", "jonas.weber@sample.invalid")}

# agent, customer (name without the sample marker), gesture, amount, reference, reason, minutes ago,
# minutes until it was sent (None: it waits for approval, being above a bound)
OFFERS = (
    ("nora", "Lars Nilsen", "Refund of shipping", Decimal("6.90"), "RF-20931", "delivery", 16 * 24 * 60 - 200, 1),
    ("jonas", "Tom Becker", "Store credit", Decimal("15"), "FJ-CR-40417", "product", 6, 1),
    ("nora", "王芳", "Store credit", Decimal("30"), "FJ-CR-40418", "delivery", 12, None),
)
