"""The customer's own words: subject prefixes, quoted replies and signatures removed.

Two passes. kb's own line-based pass runs first: it knows the forms kb's customers use
(en, nb/sv/da, de, fr, es, pt, zh; Gmail, Outlook, Apple Mail), cuts only at a whole quote
header, drops "> " lines, and removes a sign-off only near the end. Then the maintained
mail-parser-reply library (MIT) splits off reply headers in the further languages it knows
(nl, it, cs, ja, ko, ...). Only its reply-header patterns are used: its signature removal
cuts everything after any line starting with "- " or "Thanks," (a customer's list of steps),
it knows no nb or pt, and its zh pattern never matches (its look-ahead excludes what it then
asks for); kb's own pass covers those.
"""

from __future__ import annotations

import functools
import re
import warnings

from mailparser_reply.parser import EmailMessage as ReplySplitter

# The cleaner looks at each line a few times: beyond this a body is not a question to a support
# desk, and the customer's words come first anyway (the matcher reads 5,000 characters).
MAX_CLEAN_CHARS = 30_000
# The library's header patterns backtrack quadratically on long lines; it sees a bounded skeleton:
# at most this many lines, each cut to a header's length, and only the lines that could start a
# reply header (LIBRARY_CANDIDATE, and the line before one, for headers wrapped over two lines).
MAX_LIBRARY_LINES = 300
MAX_LIBRARY_LINE_CHARS = 200
MAX_LIBRARY_CANDIDATES = 50
LIBRARY_CANDIDATE = re.compile(
    r"(?:wrote|skrev|schrieb|écrit|escribió|schreef|scritto|napsal|작성하였습니다|>)[^\n]*[:：]$"
    r"|^[>*\s]*[^\s:]{1,20}(?:\s[^\s:]{1,12})?\s*:|^[>\s]*-{5,}", re.IGNORECASE)
# A quote header, separator or sign-off is a short line; kb's own patterns never look at longer
# ones, so no pattern's backtracking can grow with a line a sender made long.
MAX_MARKER_LINE_CHARS = 600
# Not "pl": its header pattern needs a single "Data:" or "Do:" line, which a customer may write.
LIBRARY_LANGUAGES = ["en", "da", "sv", "de", "fr", "es", "nl", "it", "cs", "ja", "ko"]

SUBJECT_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?"  # a list or ticket tag before the prefix: "[Ext] Re:"
    r"(?:re|fwd?|fw|sv|aw|vs|vb|wg|antw|tr|rv|res|enc|odp|回复|答复|转发|回覆|轉寄|转寄|轉發)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE,
)

# "On Mon, 3 Mar 2025 at 10:12, Ola <ola@x.no> wrote:" and its translations. A header starts
# with an intro word, a digit or a weekday abbreviation, holds a digit (the date), and ends in
# a colon after the verb; clients wrap it over up to three lines.
WROTE_VERB = (r"wrote|skrev|schrieb|a\s+écrit|escribió|escreveu|schreef|ha\s+scritto|"
              r"napisał(?:\(a\))?|napsal\(a\)|kirjoitti|写道|寫道")
WROTE_HEADER = re.compile(
    r"^(?:(?:on|den|am|le|el|em|op|il|dnia|dne|在)\s|\d|\w{2,4}\.,?\s)"
    rf"(?=.*\d).{{0,300}}?(?:{WROTE_VERB})(?:\s.{{0,200}})?[:：]$",
    re.IGNORECASE,
)
# "-----Original Message-----", "---------- Forwarded message ---------", "-----Opprinnelig melding-----"
# (No "\s*" around the title: spaces are title characters, and two quantifiers over the same
# characters made a line of "---" and 100,000 spaces take minutes.)
DASH_SEPARATOR = re.compile(r"^-{3,}[^-\n]{3,50}-{3,}$")
UNDERSCORE_SEPARATOR = re.compile(r"^_{20,}$")
APPLE_FORWARD = re.compile(r"^(?:begin forwarded message|videresendt melding|"
                           r"vidarebefordrat brev|weitergeleitete nachricht)\s*:", re.IGNORECASE)
# Outlook's header block: a From-like line followed by other header lines.
FROM_KEYS = r"from|fra|från|von|de|da|van|od|发件人|寄件者"
OTHER_KEYS = (r"sent|date|to|subject|cc|sendt|dato|til|emne|skickat|datum|till|ämne|gesendet|an|"
              r"betreff|envoyé|à|objet|enviado|fecha|para|asunto|assunto|data|inviato|oggetto|"
              r"verzonden|aan|onderwerp|发送时间|时间|收件人|主题|抄送|傳送時間|收件者|主旨")
HEADER_LINE = re.compile(rf"^\*?(?:{FROM_KEYS})\*?\s*[:：]", re.IGNORECASE)
OTHER_HEADER_LINE = re.compile(rf"^\*?(?:{OTHER_KEYS})\*?\s*[:：]", re.IGNORECASE)
SENT_FROM = re.compile(
    r"^(?:sent from my|sent from (?:outlook|mail for windows|yahoo mail)|get outlook for|"
    r"sendt fra min|sendt fra (?:outlook|e-post)|hent outlook for|skickat från min|"
    r"von meinem .{1,30} gesendet|gesendet von|envoyé de mon|enviado desde mi|"
    r"enviado do meu|发自我的|从我的.{1,20}发送|來自我的)",
    re.IGNORECASE,
)
SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
SIGN_OFFS = (
    r"best regards|kind regards|warm regards|regards|best wishes|best|cheers|thanks|thank you|"
    r"many thanks|thanks in advance|thx|br|med vennlig hilsen|med vänliga hälsningar|"
    r"med venlig hilsen|vennlig hilsen|vänliga hälsningar|venlig hilsen|mvh|hilsen|hälsningar|"
    r"takk|tack|mit freundlichen grüßen|viele grüße|beste grüße|grüße|gruß|cordialement|"
    r"saludos|atentamente|atenciosamente|abraços|obrigado|obrigada|此致|敬礼|谢谢|謝謝|祝好|多谢"
)
# The sign-off alone, or followed by a name of at most two words: "Thanks, Ola", "Mvh Kari Nordmann".
SIGN_OFF_LINE = re.compile(
    rf"^(?:{SIGN_OFFS})(?:[\s,.!，。！]*|(?:[,，]\s*|\s+)[^\s,，?？]{{1,25}}(?:\s+[^\s,，?？]{{1,25}})?[.!]?)$",
    re.IGNORECASE,
)
# A sign-off counts only when what follows it is a short name block.
MAX_SIGNATURE_LINES = 6
MAX_SIGNATURE_LINE_CHARS = 70
MAX_SIGNATURE_LINE_WORDS = 6


def clean_subject(subject: str) -> str:
    """Strip reply and forward prefixes (Re:, Fwd:, SV:, AW:, 回复:, Re[2]: ...), however nested."""
    text = " ".join((subject or "").split())
    while True:
        stripped = SUBJECT_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text.strip()
        text = stripped


def clean_body(text: str) -> str:
    """The newest part of a mail body, without quoted replies and signatures."""
    lines = (text or "")[:MAX_CLEAN_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line.rstrip() for line in _cut_at_quote(lines)]
    lines = [line for line in lines if not line.lstrip().startswith(">")]
    lines = _cut_signature(lines)
    own = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", _library_split(own)).strip()


def _cut_at_quote(lines: list[str]) -> list[str]:
    """The lines before the first quote header, separator or "Sent from my ..." line."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or len(stripped) > MAX_MARKER_LINE_CHARS:
            continue  # a blank line starts no header, and a marker is a short line
        if (DASH_SEPARATOR.match(stripped) or UNDERSCORE_SEPARATOR.match(stripped)
                or APPLE_FORWARD.match(stripped) or SENT_FROM.match(stripped)
                or _is_wrote_header(lines, index) or _is_header_block(lines, index)):
            return lines[:index]
    return lines


def _is_wrote_header(lines: list[str], index: int) -> bool:
    """True when an "On ... wrote:" header starts at this line (wrapped over up to 3 lines)."""
    joined = ""
    for line in lines[index:index + 3]:
        if len(line) > MAX_MARKER_LINE_CHARS:
            return False
        joined = f"{joined} {line.strip().lstrip('> ')}".strip()
        if WROTE_HEADER.match(joined):
            return True
    return False


def _is_header_block(lines: list[str], index: int) -> bool:
    """True when an Outlook header block (From: then Sent:/To:/Subject: lines) starts here."""
    if not HEADER_LINE.match(lines[index].strip()):
        return False
    following = [line.strip()[:MAX_MARKER_LINE_CHARS] for line in lines[index + 1:index + 5] if line.strip()]
    return sum(1 for line in following[:3] if OTHER_HEADER_LINE.match(line)) >= 2


def _cut_signature(lines: list[str]) -> list[str]:
    """Drop a "-- " signature, and a sign-off followed by a short name block near the end."""
    for index, line in enumerate(lines):
        if index and SIGNATURE_DELIMITER.match(line) and any(earlier.strip() for earlier in lines[:index]):
            lines = lines[:index]
            break
    tail = 0  # non-blank lines after the one looked at: the would-be name block
    cut = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if len(line) <= MAX_MARKER_LINE_CHARS and SIGN_OFF_LINE.match(line):
            cut = index  # keep looking up: "此致" comes before "敬礼"
        elif line:
            tail += 1
            if tail > MAX_SIGNATURE_LINES or not _name_block_line(line):
                break
    return lines[:cut]


def _name_block_line(line: str) -> bool:
    """True for a line that can sit in a signature (name, company, phone), not a question."""
    return (len(line) <= MAX_SIGNATURE_LINE_CHARS and "?" not in line and "？" not in line
            and len(line.split()) <= MAX_SIGNATURE_LINE_WORDS)


def _library_split(text: str) -> str:
    """Cut the text at the first reply header mail-parser-reply finds; "" if it starts with one."""
    skeleton = "\n".join(_library_skeleton(text.split("\n")[:MAX_LIBRARY_LINES]))
    found = _library_header_regex().search(skeleton)
    if not found:
        return text
    start = found.start() + (1 if skeleton[found.start():found.start() + 1] == "\n" else 0)
    return "\n".join(text.split("\n")[:skeleton.count("\n", 0, start)])


def _library_skeleton(lines: list[str]) -> list[str]:
    """The lines the library may look at, cut short; the others blank, so line numbers still agree."""
    lines = [line.strip()[:MAX_LIBRARY_LINE_CHARS] for line in lines]
    candidates = [False] * (len(lines) + 1)
    found = 0
    for index, line in enumerate(lines):
        if found < MAX_LIBRARY_CANDIDATES and LIBRARY_CANDIDATE.search(line):
            candidates[index] = True
            found += 1
    return [line if candidates[index] or candidates[index + 1] else ""
            for index, line in enumerate(lines)]


@functools.cache
def _library_header_regex() -> re.Pattern[str]:
    """mail-parser-reply's combined reply-header pattern for LIBRARY_LANGUAGES."""
    with warnings.catch_warnings():
        # Its constructor passes re.sub's count positionally, which Python 3.13 deprecates.
        warnings.simplefilter("ignore", DeprecationWarning)
        return ReplySplitter(text="", languages=list(LIBRARY_LANGUAGES)).HEADER_REGEX
