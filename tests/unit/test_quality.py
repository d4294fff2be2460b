"""Quality heuristics: for every filter, samples that must pass and samples it must reject."""

from __future__ import annotations

import pytest

from mason.data.quality import FilterConfig
from mason.data.quality import (
    dataset_quality,
    implausible_word,
    quality_issues,
    quality_score,
    words,
)

CFG = FilterConfig()


def qa(question: str, answer: str, **extra) -> dict:
    return {"id": "s1", "messages": [{"role": "user", "content": question},
                                     {"role": "assistant", "content": answer}],
            "meta": {"source": {"doc": "a.md", "chunk": "c1", "span": [0, 10]}, "task": "question_answering",
                     "teacher": "t", "scores": {}, "split": "train"}, **extra}


GOOD = {
    "english": qa("How does photosynthesis work in green plants?",
                  "Photosynthesis converts light energy into chemical energy. Chlorophyll in the chloroplasts "
                  "absorbs sunlight, and the plant uses it to turn carbon dioxide and water into glucose and oxygen."),
    "french": qa("Comment fonctionne la photosynthèse chez les plantes vertes ?",
                 "La photosynthèse est le processus par lequel les plantes vertes transforment l'énergie lumineuse "
                 "en énergie chimique. Elle se déroule principalement dans les chloroplastes, où la chlorophylle "
                 "capte la lumière du soleil."),
    "german": qa("Wann wurde die Donaudampfschifffahrtsgesellschaft gegründet?",
                 "Die Erste Donau-Dampfschiffahrts-Gesellschaft wurde 1829 in Wien gegründet. Sie betrieb "
                 "Dampfschiffe auf der Donau und war zeitweise die größte Binnenreederei der Welt."),
    "spanish": qa("¿Qué es la fotosíntesis en las plantas?",
                  "La fotosíntesis es el proceso mediante el cual las plantas convierten la luz solar en energía "
                  "química, produciendo glucosa y oxígeno a partir de dióxido de carbono y agua."),
    "chinese": qa("光合作用是什么？", "光合作用是绿色植物利用光能，把二氧化碳和水转化成储存能量的有机物，并释放出氧气的过程。"),
    "fenced_code": qa("How do I read a JSON file in Python?",
                      "Use the json module:\n\n```python\nimport json\n\nwith open(\"data.json\", encoding=\"utf-8\") "
                      "as f:\n    data = json.load(f)\nprint(data[\"name\"])\n```\n\n`json.load` parses the file "
                      "into dicts and lists."),
    "bare_code": qa("Write a Python function that adds two numbers.",
                    "def add(a: int, b: int) -> int:\n    return a + b\n\nassert add(2, 3) == 5"),
    # symbol-heavy enough to fail the prose checks: passes only because it is recognized as code
    "c_code": qa("How do I compute a dot product in C?",
                 'int n; for (i=0;i<n;i++) { s+=a[i]*b[i]; }\nprintf("%d\\n", s);'),
    "sql": qa("How do I count the orders per customer?",
              "SELECT customer_id, COUNT(*) AS n\nFROM orders\nGROUP BY customer_id\nORDER BY n DESC;"),
    "numbers": qa("What were the revenues in 2021 and 2022?",
                  "Revenue was $1,234,567 in 2021 and $2,345,678 in 2022, an increase of 90.0% (see Table 3, p. 12)."),
    "acronyms": qa("Which protocols does the gateway support?",
                   "It supports HTTP, HTTPS, TCP, UDP, DNS, SMTP, IMAP, FTP and SFTP over IPv4 and IPv6."),
    "markdown_table": qa("Compare the two drill models.",
                         "| Model | Power | Weight |\n|---|---|---|\n| X100 | 500 W | 1.2 kg |\n| X200 | 750 W | 1.5 kg |"
                         "\n\nThe X200 is more powerful but heavier."),
    "steps": qa("How do I clean the filter?",
                "Step 1: Open the lid of the machine. Step 2: Remove the filter from the machine. Step 3: Rinse "
                "the filter under warm water. Step 4: Put the filter back. Step 5: Close the lid."),
    "url_and_hash": qa("Where is the installer and which commit fixed the bug?",
                       "Download https://example.com/downloads/installer-v2.3.1-x86_64.tar.gz; the fix is commit "
                       "3f2a9c8e7b6d5a4f3e2d1c0b9a8f7e6d5c4b3a2f on main."),
    "big_number": qa("What is the price of the plant?", "The price is 10000000 EUR."),
    "yes_no": qa("Is Paris the capital of France?", "Yes, Paris is the capital of France."),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_ordinary_samples_pass(name):
    assert quality_issues(GOOD[name], CFG) == []


def test_empty():
    assert quality_issues(qa("What is the warranty period?", "   "), CFG) == ["empty"]
    assert quality_issues(qa("", "Two years from the date of purchase."), CFG) == ["empty"]
    assert quality_issues({"id": "x", "messages": [{"role": "user", "content": "What is it?"}]}, CFG) == ["empty"]
    # a tool-calling turn has no text and is not empty
    tool = {"id": "t", "messages": [
        {"role": "user", "content": "What is the weather in Paris today?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21 degrees in Paris today."}]}
    assert quality_issues(tool, CFG) == []


def test_too_short():
    assert quality_issues(qa("Warranty?", "Two years from the date of purchase."), CFG) == ["too_short"]
    assert quality_issues(qa("How long is the warranty period?", "Two years."), CFG) == ["too_short"]
    assert quality_issues(qa("How long is the warranty period?", "Two years."),
                          FilterConfig(min_answer_words=2)) == []
    # a Chinese answer without spaces is many words, not one
    assert len(words("光合作用是绿色植物")) == 9


def test_repetitive_words_and_characters():
    looped = qa("What is the warranty period?", "The warranty is two years. " * 5)
    assert quality_issues(looped, CFG) == ["repetitive"]
    laugh = qa("What is the warranty period?", "The warranty is " + "ha" * 30 + " two years long.")
    assert quality_issues(laugh, CFG) == ["repetitive"]
    # the limit is configurable and compared strictly
    assert "repetitive" not in quality_issues(looped, FilterConfig(max_repetition=0.9))


def test_markdown_rules_are_not_repetition():
    sample = qa("Show the result table for the two runs.",
                "Results:\n\n|------|------|------|\n| run | loss | acc |\n| a | 0.31 | 91% |\n| b | 0.29 | 92% |\n"
                "==========================================")
    assert quality_issues(sample, CFG) == []


@pytest.mark.parametrize("answer", [
    "asdfgh jklqwe rtzxcv bnmqwr tplkjh gfdsaz xcvbnm qwrtyp",
    "xq zvbk wrtp lmnq trsd vbnz qwpl kjhg mnbv cxzl",
    "@#$%^ &*()!@ #$%^&* ()_+{} |:<>? ~!@#$ %^&*( )_+ ;;; ok fine",
    "kfjeo qpwoei zmxncb vutyr aoeiruty lskdjf pqowie zmxnv bvcnxm asldkfj",
    # every word has a vowel and no long consonant run: only the vowel share gives it away
    "brdvask tkrmpol zgrvint plkdrom strvanj grpolk trsmik blvrund",
])
def test_gibberish(answer):
    assert "gibberish" in quality_issues(qa("What is the warranty period?", answer), CFG)


def test_implausible_word_shapes():
    assert implausible_word("qwrtzp")
    assert implausible_word("x" * 50)
    assert not implausible_word("Angstschweiß")
    assert not implausible_word("strengths")
    assert not implausible_word("HTTPS")
    assert not implausible_word("Donaudampfschifffahrtsgesellschaft")


def test_echo():
    question = "What is the warranty period of the X200 drill?"
    assert quality_issues(qa(question, question), CFG) == ["echo"]
    assert quality_issues(qa(question, "what is the warranty period of the x200 drill"), CFG) == ["echo"]
    assert quality_issues(qa(question, "The X200 drill has a warranty period of two years."), CFG) == []


def test_preference_samples():
    base = {"id": "p", "messages": [{"role": "user", "content": "How long is the X200 warranty?"}],
            "meta": {"task": "preference"}}
    good = {**base, "chosen": {"role": "assistant", "content": "The X200 has a two-year warranty."},
            "rejected": {"role": "assistant", "content": "The X200 has a ten-year warranty."}}
    assert quality_issues(good, CFG) == []
    same = {**good, "rejected": {"role": "assistant", "content": "the X200 has a two-year warranty"}}
    assert quality_issues(same, CFG) == ["identical_pair"]
    no_rejected = {**good, "rejected": {"role": "assistant", "content": ""}}
    assert quality_issues(no_rejected, CFG) == ["empty"]


def test_ungrounded_only_with_a_source():
    sample = qa("When was the company founded?", "The company was founded in 1990 by three engineers in Oslo.")
    assert quality_issues(sample, CFG) == []
    source = "Founded in 1990 by three engineers, the company is based in Oslo."
    assert quality_issues(sample, CFG, source=source) == []
    assert quality_issues(sample, CFG, source="Our drills come with a warranty.") == ["ungrounded"]


def test_multi_turn_checks_every_turn():
    sample = {"id": "m", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "What does the X200 drill weigh?"},
        {"role": "assistant", "content": "The X200 drill weighs 1.5 kg without the battery."},
        {"role": "user", "content": "And with it?"},
        {"role": "assistant", "content": "qwrtz xkcdq plmnb vcxzl trwqp"}]}
    assert quality_issues(sample, CFG) == ["gibberish"]


def test_quality_score_ranks_clean_above_flawed():
    clean = quality_score(GOOD["english"])
    assert clean > 0.9
    assert quality_score(GOOD["french"]) > 0.9
    assert quality_score(qa("What is the warranty period?", "   ")) == 0.0
    for flawed in (qa("What is the warranty period?", "The warranty is two years. " * 5),
                   qa("What is the warranty period?", "asdfgh jklqwe rtzxcv bnmqwr tplkjh gfdsaz"),
                   qa("What is the warranty period?", "What is the warranty period?"),
                   qa("What is the warranty period?", "Two years.")):
        assert 0.0 <= quality_score(flawed) < clean - 0.4


def test_dataset_quality_summary():
    samples = [GOOD["english"], GOOD["french"], qa("What is the warranty period?", "What is the warranty period?"),
               qa("What is the warranty period?", "")]
    summary = dataset_quality(samples, CFG)
    assert summary["samples"] == 4
    assert summary["share_passing"] == 0.5
    assert summary["issues"]["echo"] == 1
    assert summary["issues"]["empty"] == 1
    assert summary["issues"]["gibberish"] == 0
    assert 0.4 < summary["mean_score"] < 0.6
    assert dataset_quality([])["samples"] == 0
