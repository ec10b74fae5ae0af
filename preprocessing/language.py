"""Does a transcript look like English? For the notice that a score of English-only weights cannot be trusted.

Two checks, no model: the script (most letters outside the Latin alphabet: Chinese, Cyrillic, Arabic, ...) and,
for Latin-script text, the common function words of English against those of six other Latin-script languages
("Ce film est nul" has ce, est, une, de and no English one). A few foreign names in an English sentence leave
the English function words ahead; a text too short to have any (two or three words) counts as English.
"""

from __future__ import annotations

import re
import unicodedata

MIN_LETTERS = 2          # fewer letters than this: nothing to judge
MIN_FOREIGN_WORDS = 2    # another language's function words needed (and more of them than English ones)
ENGLISH = set("""the a an and or but if of to in on at by for with from about as into than then that this these
those is are was were be been being am have has had do does did not no it its it's i i'm me my we our you your
he him his she her they them their what which who whom whose when where why how very so too just also there here
can could would should will won't don't didn't isn't wasn't""".split())
# function words of each language that are not also English words (so "a", "in", "die", "war" count for none)
OTHERS = {
    "French": "le la les un une des du de est et ce cette ces que qui dans pour pas sur avec mais ou très je tu il "
              "elle nous vous ils elles mon ma mes son sa ses leur être été suis sont était c'est n'est j'ai",
    "Spanish": "el los las una unos unas es y que en por para con pero muy del al lo este esta estos yo tú él ella "
               "nosotros ellos su sus mi mis fue era está son ser porque como más",
    "German": "der das und ist nicht ein eine einen dem den des mit für auf auch sehr ich du er sie wir ihr es sich "
              "nur aber oder wie war sind zu von im",
    "Italian": "il lo gli una uno è e che di da per con non sono molto ma io tu lui lei noi voi loro questo questa "
               "nel della del alla",
    "Portuguese": "o os uma um é e que não com para por muito mas eu ele ela nós eles do da dos das no na foi esse "
                  "essa isso",
    "Dutch": "de het een en is niet van dat ik je hij zij wij met voor op maar zeer heel dit deze zijn",
}
OTHERS = {language: set(words.split()) - ENGLISH for language, words in OTHERS.items()}
SCRIPT_NAMES = {"CJK": "Chinese or Japanese characters", "HIRAGANA": "Japanese characters",
                "KATAKANA": "Japanese characters", "HANGUL": "Korean characters"}
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# text encoders that read more than English (by name): their weights may be right about other languages
NOT_ONLY_ENGLISH = ("chinese", "multilingual", "xlm", "labse", "mbert", "japanese", "korean", "arabic", "camembert",
                    "flaubert", "german", "french", "spanish")


def script(letter: str) -> str:
    """The Unicode script of a letter, as the first word of its name: LATIN, CJK, CYRILLIC, ARABIC, ..."""
    return unicodedata.name(letter, "UNKNOWN").split()[0]


def not_english(text: str) -> str | None:
    """None when ``text`` may be English; else why it is not, in words ("written in Cyrillic letters",
    "its common words are French")."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < MIN_LETTERS:
        return None
    scripts: dict[str, int] = {}
    for c in letters:
        scripts[script(c)] = scripts.get(script(c), 0) + 1
    main = max(scripts, key=scripts.get)
    if scripts.get("LATIN", 0) < len(letters) / 2:
        return f"written in {SCRIPT_NAMES.get(main, main.title() + ' letters')}"
    words = [w.lower() for w in WORD.findall(text.replace("’", "'"))]
    english = sum(w in ENGLISH for w in words)
    counts = {language: sum(w in vocabulary for w in words) for language, vocabulary in OTHERS.items()}
    language = max(counts, key=counts.get)
    if counts[language] >= MIN_FOREIGN_WORDS and counts[language] > english:
        return f"its common words are {language}"
    return None


def reads_only_english(text_encoder: str) -> bool:
    """Whether weights with this text encoder (config.text_encoder) read English only, judged by its name."""
    return not any(hint in text_encoder.lower() for hint in NOT_ONLY_ENGLISH)


def untrusted_notice(text: str, text_encoder: str, source: str) -> str | None:
    """The notice for a non-English transcript (``source`` "typed" or "asr") under English-only weights, else None."""
    reason = not_english(text) if reads_only_english(text_encoder) else None
    if reason is None:
        return None
    heard = "The speech recognition wrote a transcript that" if source == "asr" else "The transcript"
    return (f"{heard} does not look like English ({reason}). These weights read English only, so this score "
            "cannot be trusted: type an English transcript to get a meaningful one.")
