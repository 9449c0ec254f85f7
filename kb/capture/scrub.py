"""Personal data out of customers' words before kb keeps them as knowledge (examples, drafts).

Removed: email addresses; order, card, invoice and tracking numbers ("[number]"); phone numbers
("[phone]"); the names given to ``scrub``, the name a greeting addresses ("Hi Kari," / "Hei Ola," /
"您好，王芳") and the names of a signature (the short lines after "Thanks" / "Mvh" / "谢谢" at the
end), wherever else they appear too ("[name]"). Each becomes a placeholder a reader understands,
so an example still reads as a question. Unsure cases lean to removing: a lost word costs less
than a kept phone number.
"""

from __future__ import annotations

import re
from typing import Iterable

from kb.autoreply.cleaning import SIGN_OFFS

# Starting only where a local part can start keeps a long run of letters from costing quadratic time.
EMAIL = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A number named as an order, card, invoice, account or tracking number, in en, nb and zh:
# "order 20261234", "ordrenr. AB-1234", "order #5512", "订单号：20261234", "kortnummer 4111...".
NUMBER_WORDS = (r"order|orders|ordre|ordrenr|ordrenummer|bestilling|bestillingsnummer|invoice|faktura|"
                r"fakturanr|fakturanummer|account|konto|kontonr|kontonummer|kundenr|kundenummer|customer|"
                r"tracking|sporing|sporingsnummer|reference|ref|referanse|card|kort|kortnr|kortnummer|"
                r"tracking number|tracking no")
ZH_NUMBER_WORDS = r"(?:订单编号|订单号?|快递单号|运单号|单号|发票号?|卡号|账号)"
NAMED_NUMBER = re.compile(
    rf"((?:(?<!\w)(?:{NUMBER_WORDS})|{ZH_NUMBER_WORDS})(?:\s*(?:no|nr|number|nummer|id|num)\b)?\.?\s*[:：#]?\s*(?:is|er|是|为)?\s*#?)"
    r"((?=[A-Z0-9/-]{0,40}?\d[A-Z0-9/-]{0,40}?\d[A-Z0-9/-]{0,40}?\d)[A-Z0-9][A-Z0-9/-]{1,40}(?: \d{2,6}){0,4})"
    r"(?![A-Za-z0-9])", re.IGNORECASE)
# A card number: 13 to 19 digits, in groups (4111 1111 1111 1111, 3782-822463-10005) or not.
CARD = re.compile(r"(?<![\d+])\d{4}(?:[ -]?\d{2,6}){2,4}(?!\d)")
# A reference with letters and at least five digits, or "#" and digits: AB-123456, #55123.
CODE = re.compile(r"(?<![A-Za-z0-9_])(?:[A-Z]{1,4}[-#]?\d{5,}|#\d{4,})(?![A-Za-z0-9_])")
PHONE_WORDS = r"phone|tel|telephone|mobile|cell|call me|ring|ring meg|tlf|telefon|mobil"
NAMED_PHONE = re.compile(rf"((?:(?<!\w)(?:{PHONE_WORDS})|联系电话|电话|手机号?)\.?\s*(?:on|at|på|nr\.?|number|nummer)?\s*[:：]?\s*)"
                         r"(\+?\(?\d[\d ().-]{5,20}\d)", re.IGNORECASE)
# A phone: an optional +, then 7 or more digits with spaces, dots, dashes or brackets between them.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,}\d(?!\w)")
DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
CN_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
LONG_NUMBER = re.compile(r"(?<![A-Za-z0-9_])\d{5,}(?![A-Za-z0-9_])")  # Chinese writes digits amid words

GREETING_WORDS = r"hi|hello|hey|dear|good morning|good afternoon|hei|hallo|heisann|hei hei|kjære|god morgen|god dag"
NOT_NAMES = {"there", "team", "support", "all", "everyone", "folks", "guys", "sir", "madam", "sir or madam",
             "customer service", "kundeservice", "alle", "dere", "der", "du", "kundesenter", "again", "friends"}
# One to three capitalised words ("Kari", "Ola Nordmann", "Mr. O'Brien", "Anne-Marit") and the
# punctuation that ends a greeting.
LATIN_NAME = r"(?:(?:Mr|Mrs|Ms|Dr|Herr|Fru)\.?\s+)?[A-ZÆØÅÄÖÜÉ][\w'’-]*(?:\s+[A-ZÆØÅÄÖÜÉ][\w'’-]*){0,2}"
GREETING = re.compile(rf"^[ \t]*(?i:{GREETING_WORDS})[ \t]+({LATIN_NAME})[ \t]*(?=[,!:.\n]|$)")
# Chinese names: a common surname and one or two given characters, or a surname with a title.
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
            "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
ZH_NAME = (rf"[{SURNAMES}](?:先生|女士|小姐|经理|老师|总)"
           rf"|[{SURNAMES}][\u4e00-\u9fff]{{1,2}}?(?=先生|女士|小姐|经理|老师|[，,。！!：:\s]|您好|你好|$)")
ZH_GREETING = re.compile(rf"^[ \t]*(?:(?:您好|你好|亲爱的|尊敬的)[，,：:！!\s]*({ZH_NAME})"
                         rf"|({ZH_NAME})[，,\s]*(?:您好|你好))", re.MULTILINE)
SIGN_OFF = re.compile(rf"^[ \t]*(?:{SIGN_OFFS})(?![A-Za-zÆØÅæøåÄÖäöüé])[\s,.!，。！-]*(.*)$", re.IGNORECASE)
# A sign-off and a name closing the last line after a sentence: "The size is wrong. Thanks, Ola".
INLINE_SIGN_OFF = re.compile(rf"[.!?。！？]\s*(?i:{SIGN_OFFS})[,，!！]?\s+({LATIN_NAME}|[{SURNAMES}][\u4e00-\u9fff]{{1,2}})[.!。]?$")
SIGNATURE_LINES = 3
NAME_LINE = re.compile(rf"^(?:{LATIN_NAME}|[{SURNAMES}](?:[\u4e00-\u9fff]{{1,2}}))[.!。]?$")


def greeting_names(text: str) -> list[str]:
    """The name a greeting on the first written line addresses: "Hi Kari," / "Hei Ola," / "您好，王芳"."""
    first = next((line for line in (text or "").splitlines() if line.strip()), "")
    found = GREETING.match(first)
    if found and found.group(1).casefold() not in NOT_NAMES:
        return [found.group(1)]
    zh = ZH_GREETING.match(first)
    return [zh.group(1) or zh.group(2)] if zh else []


def signature_names(text: str) -> list[str]:
    """The names of a signature: name-like lines after the last sign-off line near the end."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for index in range(len(lines) - 1, max(len(lines) - SIGNATURE_LINES - 2, -1), -1):
        found = SIGN_OFF.match(lines[index]) if len(lines[index]) <= 80 else None
        if found is None:
            continue
        after = [found.group(1).strip(" ,.!，。！")] + lines[index + 1:]
        return [line for line in after if line and NAME_LINE.match(line) and line.casefold() not in NOT_NAMES]
    inline = INLINE_SIGN_OFF.search(lines[-1][-80:]) if lines else None  # "... er feil. Takk, Ola"
    return [inline.group(1)] if inline and inline.group(1).casefold() not in NOT_NAMES else []


def _name_pattern(name: str) -> str:
    """A name as a pattern; a CJK name needs no word boundaries (Chinese has no spaces)."""
    if re.search(r"[\u4e00-\u9fff]", name):
        return re.escape(name)
    return rf"(?<!\w){re.escape(name)}(?!\w)"


def found_names(text: str) -> list[str]:
    """The names the text itself gives away: the greeting's and the signature's, and their words."""
    found: set[str] = set()
    for name in greeting_names(text) + signature_names(text):
        name = re.sub(r"^(?:Mr|Mrs|Ms|Dr|Herr|Fru)\.?\s+", "", name)
        found.add(name)
        found.update(part for part in name.split() if len(part) > 1)
        zh = re.fullmatch(r"(.)(先生|女士|小姐|经理|老师|总)", name)
        if zh:  # "王先生" may be "王经理" further on: the surname with any title
            found.update(zh.group(1) + title for title in ("先生", "女士", "小姐", "经理", "老师", "总"))
    return sorted(found, key=len, reverse=True)


def _replace_names(text: str, names: Iterable[str], flags: int) -> str:
    """Each name (longest first, so "Ola Nordmann" goes before "Ola") as "[name]"."""
    for name in sorted({n.strip() for n in names if n and len(n.strip()) > 1}, key=len, reverse=True):
        text = re.sub(_name_pattern(name), "[name]", text, flags=flags)
    return text


def _phone(match: re.Match) -> str:
    """A digit run with separators as a phone unless it is short or a date."""
    value = match.group()
    if sum(c.isdigit() for c in value) < 7 or DATE.fullmatch(value.strip()):
        return value
    if value.isdigit():  # no +, no spaces: a Norwegian mobile (4xx xx xxx, 9xx xx xxx), else a number
        return "[phone]" if re.fullmatch(r"[49]\d{7}", value) else "[number]"
    return "[phone]"


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """The text with email addresses, numbers, phone numbers and names replaced by placeholders."""
    text = EMAIL.sub("[email]", text or "")
    # Names the caller knows (the sender's) in any case; names read from the text only as written,
    # so a greeting "Hi Will," does not take every "will" with it.
    names = [n for name in names if isinstance(name, str) for n in (name, *name.split())]  # "Kari Nordmann", then "Kari"
    text = _replace_names(text, names, re.IGNORECASE)
    text = _replace_names(text, found_names(text), 0)
    text = NAMED_NUMBER.sub(lambda m: m.group(1) + "[number]", text)
    text = NAMED_PHONE.sub(lambda m: m.group(1) + "[phone]", text)
    text = CARD.sub(lambda m: "[number]" if 13 <= sum(c.isdigit() for c in m.group()) <= 19 else m.group(), text)
    text = CODE.sub("[number]", text)
    text = CN_MOBILE.sub("[phone]", text)
    text = PHONE.sub(_phone, text)
    return LONG_NUMBER.sub("[number]", text)
