"""Bytes to text under a declared charset that may be missing, unknown or wrong."""

from __future__ import annotations

# Labels mail software writes for one charset while meaning its superset, as browsers do
# (WHATWG Encoding): "iso-8859-1" mail routinely carries Windows curly quotes, "gb2312" mail
# carries GBK characters. The declared label itself is the second try.
SUPERSETS = {
    "iso-8859-1": "windows-1252", "iso8859-1": "windows-1252", "latin1": "windows-1252",
    "latin-1": "windows-1252", "l1": "windows-1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "big5": "big5hkscs",
    "shift_jis": "cp932", "x-sjis": "cp932",
}
LAST_RESORT = "windows-1252"


def decode_bytes(data: bytes, declared: str | None, errors: list[str]) -> str:
    """Decode with the declared charset, then utf-8, then windows-1252 with replacement.

    Anything that went wrong is appended to errors as a sentence a person can read.
    """
    label = (declared or "").strip().strip('"').lower()
    tries = [SUPERSETS[label], label] if label in SUPERSETS else [label] if label else []
    problem = ""
    for name in tries:
        try:
            return data.decode(name)
        except LookupError:  # unknown, or not a text codec at all (charset=base64 happens)
            problem = f"unknown charset {label}"
        except UnicodeDecodeError:
            problem = f"body is not valid {label}"
    try:
        text = data.decode("utf-8")
        used = "utf-8"
    except UnicodeDecodeError:
        text = data.decode(LAST_RESORT, errors="replace")
        used = LAST_RESORT
    if problem:
        errors.append(f"{problem}: decoded as {used}")
    elif used != "utf-8":
        errors.append(f"no charset declared and not utf-8: decoded as {used}")
    return text
