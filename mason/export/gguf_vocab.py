"""Tokenizer metadata for a GGUF file, read from a Hugging Face model folder.

Byte-level BPE (GPT-2 style: SmolLM, Llama 3, Qwen2) is the first-class case and is written as
`tokenizer.ggml.model = gpt2` with tokens, token types, merges and `tokenizer.ggml.pre`, the name
of the pre-tokenizer (split regex) llama.cpp must apply. llama.cpp's converter picks that name by
hashing the tokenization of a fixed check text; we do the same for the tokenizers we know, then
look at the pre-tokenizer's structure in tokenizer.json (which also covers retrained vocabularies,
whose hash differs), and fall back to "default" with a warning.

SentencePiece-style tokenizers (Llama 2, Mistral v0.1-v0.3: `tokenizer.ggml.model = llama`) are
best effort: a byte-fallback BPE tokenizer.json through `gguf.LlamaHfVocab`, else tokenizer.model
through sentencepiece when it is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from mason.core.errors import MasonError

#: llama.cpp's check text (convert_hf_to_gguf.py, get_vocab_base_pre): its tokenization differs
#: between pre-tokenizers, so sha256(str(ids)) identifies a tokenizer.
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) "
    "✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you "
    "sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

#: check-text hashes of known tokenizers -> llama.cpp pre-tokenizer name (from llama.cpp's table)
KNOWN_PRE_HASHES: dict[str, str] = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM / SmolLM2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama 3
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5 / Qwen2 / 2.5
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",  # Mistral Nemo
}

#: the split regexes of the Llama 3 and Qwen2 tokenizers, as tokenizer.json writes them
LLAMA3_SPLIT = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
QWEN2_SPLIT = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)

# GGUF token types (gguf.TokenType values), spelled out so this module imports without gguf
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class VocabInfo:
    """Everything the GGUF writer needs about the tokenizer.

    Attributes:
        model: `gpt2` (byte-level BPE) or `llama` (SentencePiece / byte-fallback BPE).
        pre: the llama.cpp pre-tokenizer name (`tokenizer.ggml.pre`).
        pre_source: how `pre` was found: `hash`, `structure` or `fallback`.
        tokens, token_types, scores: one entry per embedding row (scores only for `llama`).
        merges: BPE merges as "a b" strings.
        special_ids: bos/eos/unk/pad/... -> id.
        add_bos, add_eos: whether the HF tokenizer adds them to plain text.
        add_space_prefix: SentencePiece's leading-space flag (None for gpt2).
        chat_template: the tokenizer's Jinja chat template.
        warnings: what the caller should report (unknown pre-tokenizer, padded vocab...).
    """

    model: str
    pre: str
    pre_source: str
    tokens: list[str]
    token_types: list[int]
    merges: list[str] = field(default_factory=list)
    scores: list[float] | None = None
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    warnings: list[str] = field(default_factory=list)


def special_token_flags(tokenizer: Any) -> tuple[bool, bool]:
    """(adds bos, adds eos): what the HF tokenizer puts around plain text on its own."""
    plain = tokenizer("a b", add_special_tokens=False)["input_ids"]
    full = tokenizer("a b")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    return bool(add_bos), bool(add_eos)


def check_hash(tokenizer: Any) -> str:
    """sha256 of the check text's token ids, as llama.cpp's converter computes it."""
    return sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()


def _split_pattern(step: dict[str, Any]) -> str | None:
    pattern = step.get("pattern") or {}
    return pattern.get("Regex") if isinstance(pattern, dict) else None


def pre_from_structure(tokenizer_json: dict[str, Any]) -> str | None:
    """The llama.cpp pre-tokenizer that reproduces tokenizer.json's pre-tokenization, when we
    know one for its structure (normalizer-free byte-level BPE only); else None."""
    if tokenizer_json.get("normalizer"):
        return None
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    shape = [s.get("type") for s in steps]
    last = steps[-1] if steps else {}
    if last.get("type") != "ByteLevel" or last.get("add_prefix_space"):
        return None
    if shape == ["ByteLevel"] and last.get("use_regex", True):
        return "gpt-2"
    if shape == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and last.get("use_regex", True):
        return "smollm"
    if shape == ["Split", "ByteLevel"] and not last.get("use_regex", True):
        regex = _split_pattern(steps[0])
        if regex == LLAMA3_SPLIT:
            return "llama-bpe"
        if regex == QWEN2_SPLIT:
            return "qwen2"
    return None


def detect_pre_tokenizer(tokenizer: Any, tokenizer_json: dict[str, Any]) -> tuple[str, str, str | None]:
    """(name, source, warning): the `tokenizer.ggml.pre` value for a byte-level BPE tokenizer.

    Known check-text hash first (llama.cpp's own method), then the pre-tokenizer's structure,
    then "default" with a warning (llama.cpp then splits text its own generic way).
    """
    digest = check_hash(tokenizer)
    if digest in KNOWN_PRE_HASHES:
        return KNOWN_PRE_HASHES[digest], "hash", None
    name = pre_from_structure(tokenizer_json)
    if name is not None:
        return name, "structure", None
    return "default", "fallback", (
        f"unknown BPE pre-tokenizer (check hash {digest[:16]}...): wrote tokenizer.ggml.pre = default; "
        "llama.cpp may split text differently from the Hugging Face tokenizer"
    )


def _bpe_tokens(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    # mirrors llama.cpp's get_vocab_base: one entry per embedding row, added tokens typed
    reverse = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        token = reverse[i]
        if token in added:
            info = decoder.get(i)
            if info is not None and not info.normalized:
                # llama.cpp expects added tokens pre-normalized
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            special = (info is not None and info.special) or (token.startswith("<|") and token.endswith("|>"))
            types.append(CONTROL if special else USER_DEFINED)
        else:
            types.append(NORMAL)
        tokens.append(token)
    return tokens, types


def _spm_from_json(tokenizer: Any, tokenizer_json: dict[str, Any],
                   vocab_size: int) -> tuple[list[str], list[float], list[int]]:
    # SentencePiece-style BPE (byte fallback) from tokenizer.json: llama.cpp's SPM tokenizer merges
    # the adjacent pair whose joined text scores highest, so a merged piece scores -(merge rank)
    model = tokenizer_json["model"]
    ranks: dict[str, int] = {}
    for rank, merge in enumerate(model.get("merges", [])):
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        ranks.setdefault(a + b, rank)
    reverse = {i: t for t, i in tokenizer.get_vocab().items()}
    decoder = tokenizer.added_tokens_decoder
    unk = tokenizer.unk_token
    tokens, scores, types = [], [], []
    for i in range(vocab_size):
        token = reverse.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            scores.append(-1000.0)
            types.append(UNUSED)
            continue
        score = 0.0
        if token == unk:
            ttype = UNKNOWN
        elif i in decoder:
            ttype = CONTROL if decoder[i].special else USER_DEFINED
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            ttype = BYTE
        else:
            ttype, score = NORMAL, -float(ranks.get(token, 0))
        tokens.append(token)
        scores.append(score)
        types.append(ttype)
    return tokens, scores, types


def _llama_tokens(tokenizer: Any, model_dir: Path, tokenizer_json: dict[str, Any],
                  vocab_size: int) -> tuple[list[str], list[float], list[int], str]:
    import importlib.util

    import gguf

    if (model_dir / "tokenizer.model").is_file() and importlib.util.find_spec("sentencepiece"):
        vocab = gguf.SentencePieceVocab(model_dir)  # the real SentencePiece scores
        tokens, scores, types = [], [], []
        for text, score, ttype in vocab.all_tokens():
            tokens.append(text.decode("utf-8") if isinstance(text, bytes) else text)
            scores.append(float(score))
            types.append(int(ttype))
        source = "tokenizer.model (SentencePiece)"
    elif tokenizer_json.get("model", {}).get("type") == "BPE":
        tokens, scores, types = _spm_from_json(tokenizer, tokenizer_json, vocab_size)
        source = "tokenizer.json (byte-fallback BPE)"
    else:
        raise MasonError(f"{model_dir}: this SentencePiece tokenizer needs the sentencepiece package",
                         hint="pip install sentencepiece")
    if len(tokens) > vocab_size:
        raise MasonError(f"tokenizer has {len(tokens)} tokens but the model's embedding only {vocab_size} rows",
                         hint="resize the token embeddings to the tokenizer before exporting")
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]")
        scores.append(-1000.0)
        types.append(UNUSED)
    return tokens, scores, types, source


def _add_space_prefix(tokenizer_json: dict[str, Any]) -> bool:
    # SentencePiece-style tokenizers prepend "▁" either in the normalizer or the pre-tokenizer
    text = json.dumps([tokenizer_json.get("normalizer"), tokenizer_json.get("pre_tokenizer")])
    return '"Prepend"' in text or '"prepend_scheme": "always"' in text or '"prepend_scheme": "first"' in text


def read_vocab(model_dir: Path, vocab_size: int) -> VocabInfo:
    """Read the tokenizer of `model_dir` for a model with `vocab_size` embedding rows.

    Raises:
        MasonError: no tokenizer, a tokenizer type GGUF export does not handle (WordPiece,
            Unigram), or more tokens than embedding rows.
    """
    import gguf
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as e:
        raise MasonError(f"{model_dir}: cannot load the tokenizer: {e}", hint="the folder needs tokenizer.json") from e
    tj_path = model_dir / "tokenizer.json"
    tj = json.loads(tj_path.read_text(encoding="utf-8")) if tj_path.is_file() else {}
    kind = tj.get("model", {}).get("type")
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    add_bos, add_eos = special_token_flags(tokenizer)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else special.chat_template
    common: dict[str, Any] = {"special_ids": dict(special.special_token_ids), "add_bos": add_bos, "add_eos": add_eos,
                              "chat_template": template if isinstance(template, str) else None}
    is_byte_level = '"ByteLevel"' in json.dumps(tj.get("pre_tokenizer"))
    if kind == "BPE" and is_byte_level and not tj["model"].get("byte_fallback"):
        if len(tokenizer) > vocab_size:
            raise MasonError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding only {vocab_size} rows",
                             hint="resize the token embeddings to the tokenizer before exporting")
        tokens, types = _bpe_tokens(tokenizer, vocab_size)
        pre, source, warning = detect_pre_tokenizer(tokenizer, tj)
        info = VocabInfo("gpt2", pre, source, tokens, types, merges=list(special.merges), **common)
        if warning:
            info.warnings.append(warning)
        return info
    if (kind == "BPE" and tj["model"].get("byte_fallback")) or (model_dir / "tokenizer.model").is_file():
        tokens, scores, types, source = _llama_tokens(tokenizer, model_dir, tj, vocab_size)
        info = VocabInfo("llama", "default", source, tokens, types, scores=scores,
                         add_space_prefix=_add_space_prefix(tj) if tj else True, **common)
        info.warnings.append(f"SentencePiece-style tokenizer from {source}: supported on a best-effort basis")
        return info
    raise MasonError(
        f"{model_dir}: tokenizer type {kind or 'unknown'!r} is not supported for GGUF export",
        hint="GGUF export handles byte-level BPE (GPT-2/Llama 3/Qwen2 style) and SentencePiece tokenizers",
    )


def add_vocab(writer: Any, info: VocabInfo) -> None:
    """Write `info` into a `gguf.GGUFWriter` (tokenizer.ggml.* and tokenizer.chat_template)."""
    writer.add_tokenizer_model(info.model)
    writer.add_tokenizer_pre(info.pre)
    writer.add_token_list(info.tokens)
    writer.add_token_types(info.token_types)
    if info.scores is not None:
        writer.add_token_scores(info.scores)
    if info.merges:
        writer.add_token_merges(info.merges)
    ids = info.special_ids
    for kind, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("unk", writer.add_unk_token_id), ("sep", writer.add_sep_token_id),
                      ("pad", writer.add_pad_token_id), ("mask", writer.add_mask_token_id)):
        if kind in ids:
            add(ids[kind])
    writer.add_add_bos_token(info.add_bos)
    writer.add_add_eos_token(info.add_eos)
    if info.add_space_prefix is not None:
        writer.add_add_space_prefix(info.add_space_prefix)
    if info.chat_template:
        writer.add_chat_template(info.chat_template)
