"""Words of a customer's question that carry its form rather than its topic.

"How long does a refund take?" is about refunds: "long" and "take" only say what is asked, and
they appear in many articles about other things. Such generic words still help rank the articles
that match the topic, with a small weight, but an article that matches nothing else is not a
result. Stop words (the analyzers' lists; Chinese function words below) are not searched at all.
The lists are exact lowercase words, inflections spelt out, so nothing topical is caught by a stem.
"""

from __future__ import annotations

EN = """able actually again ago already also always another anybody anyone anything anyway anywhere around
ask asked asking best better cannot could currently dear easiest easily easy
else even ever every everything exactly example fast faster fastest find finding finds give gives go goes going
gone good great hello help helping hey hi however instead keep kind know knows like likely long
look looking lot lots make makes making many maybe mean much need needed needs never nothing often okay one
ones please possible possibly pretty probably question questions quick quickly rather really regards said say
see seem seems simple simply since sincerely somebody somehow someone something sometimes somewhere soon sort
still sure take taken takes taking tell thank thanks thing things think though time times told took tried try
trying use used uses using want wanted wants way ways well whether wish without wonder wondering work
working works yes""".split()

NB = """bruke bruker fortsatt fremdeles finne finner få gjøre gjør hallo hei hjelp hjelpe kanskje lang lange lenge
lurer mulig måte må noen noe nå ta takk tar tatt tid tok trenger trengs vet vite ønsker""".split()

ZH = """如何 怎么 怎样 怎么办 怎么样 为什么 什么 多少 多久 多长 多长时间 长时间 时间 需要 可以 能 能否 是否 可能 想 想要 要 应该
帮助 帮忙 问题 一下 请问 你好 您好 谢谢 知道 办法 哪里 哪 哪个 几 几天 没有 还 已经 一直""".split()

# Dropped like the analyzers' stop words: Chinese function words, and the pieces English
# contractions split into ("I've" -> i, ve; "doesn't" -> doesn, t).
STOP = frozenset("""的 了 吗 呢 吧 啊 呀 是 我 我的 你 您 你的 您的 我们 他 她 它 这 那 这个 那个 和 与 及 或 在 也 都 就
把 被 给 对 从 到 让 有 很 会 一个 个
ve ll re doesn didn isn aren wasn weren haven hasn hadn couldn wouldn shouldn won""".split())

GENERIC = frozenset(EN + NB + ZH)


def is_generic(word: str) -> bool:
    """Whether a (lowercased) query word only carries the question's form."""
    return word in GENERIC


def is_stop(word: str) -> bool:
    """Whether a (lowercased) query word is a function word that is not searched for."""
    return word in STOP
