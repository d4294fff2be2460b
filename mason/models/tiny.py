"""The tiny-model kit: a 2-layer Llama and a byte-level BPE tokenizer built from text in seconds.

The machines have no model hub, so tests (and the fast quickstart variant) build their own model:
a tokenizer trained with `tokenizers` on some text, wrapped as a `PreTrainedTokenizerFast` with a
ChatML chat template, and a randomly initialised `LlamaForCausalLM`. The folder it writes is a
normal Hugging Face model folder (`from_pretrained` loads it), laid out like SmolLM2-135M-Instruct:

- special tokens `<|endoftext|>` (0), `<|im_start|>` (1), `<|im_end|>` (2); bos `<|im_start|>`,
  eos `<|im_end|>` (generation stops at the end of an assistant turn), pad `<|endoftext|>`
  (distinct from eos, so masking padding never masks the end-of-turn label);
- pre-tokenization as SmolLM2's: digits one by one, then the GPT-2 byte-level regex, so
  llama.cpp's `smollm` pre-tokenizer reproduces it after a GGUF export;
- no token is added implicitly (no bos prepended), the chat template writes every marker.

`arch` picks another architecture of the same tiny size (`TINY_ARCHS`): Phi-3, Gemma 1/2/3 and
Qwen3 share the ChatML tokenizer above; `gpt2` gets a GPT-2 style tokenizer instead (plain
byte-level BPE with the GPT-2 split regex, `<|endoftext|>` as bos/eos/unk, no pad token and no
chat template, like DistilGPT2).

Heavy libraries are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

#: Bumped whenever the layout of the built folder changes, so cached builds are redone.
TINY_FORMAT_VERSION = 1

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
#: Order fixes their ids (0, 1, 2), the same as in SmolLM2's vocabulary.
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
#: the architectures `build_tiny_model(arch=...)` builds (Hugging Face `model_type` names)
TINY_ARCHS = ("llama", "gpt2", "phi3", "gemma", "gemma2", "gemma3", "qwen3")

#: ChatML, the shape of SmolLM2's template without its default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: Default training text for the tokenizer: plain English prose with numbers, punctuation and a
#: few chat turns, enough to learn a few hundred merges.
DEFAULT_TEXT = """\
A mason builds walls, arches and chimneys from stone, brick and mortar. The craft is old: the
first masons cut limestone blocks by hand, and their tools were a hammer, a chisel and a level.
A good wall starts with a good foundation. The mason digs a trench below the frost line, pours a
concrete footing, and lays the first course of blocks on a bed of mortar 10 millimetres thick.
Each course is checked with a spirit level and a line stretched between two corner posts.
Mortar is a mix of sand, cement, lime and water. A common mix is 1 part cement, 1 part lime and
6 parts sand. Too much water makes the mortar weak; too little makes it hard to spread.
Bricks are laid in a bond, a pattern that staggers the joints so that no vertical joint runs
through two courses. The running bond, the English bond and the Flemish bond are the best known.
An arch carries the weight of the wall above an opening. The keystone, at the top of the arch,
locks the other stones in place. Roman builders used arches in bridges and aqueducts; some of
them still stand after 2,000 years.
In 1850 a city might employ 300 masons; in 2024 machines cut the stone, but the work of setting
it by hand has not changed much. Apprentices learn for 3 or 4 years before they are journeymen.
Safety matters on every site: wear gloves, goggles and boots, lift with your legs, and never
stand under a load. Scaffolding must be inspected every morning before work begins.
Questions and answers help people learn. What holds bricks together? Mortar holds them together.
Why does a wall need a foundation? A foundation spreads the weight and keeps the wall from
sinking or cracking. How long does mortar take to cure? It sets in a day and gains most of its
strength in 28 days.
<|im_start|>user
What is a keystone?<|im_end|>
<|im_start|>assistant
The keystone is the stone at the top of an arch that locks the others in place.<|im_end|>
<|im_start|>user
How thick is a mortar joint?<|im_end|>
<|im_start|>assistant
A typical joint is about 10 mm thick.<|im_end|>
Numbers, dates and units appear in documents too: 3.5 metres, 12 kg, 45 degrees, 7/8 inch,
version 1.2.3, the year 1999, page 42, section 4.1, a price of $19.99 and a rate of 5%.
Code and data sometimes appear as well: {"name": "wall", "height": 2.4}, x = y + 1, and a list
like [1, 2, 3]. Lists use dashes - or bullets, and sentences end with a period, a question mark
or an exclamation mark!
"""


def default_texts() -> list[str]:
    """The built-in training text, split into lines (what `build_tiny_model` uses by default)."""
    return DEFAULT_TEXT.splitlines(keepends=True)


def _check_shape(vocab_size: int, hidden_size: int, num_heads: int, num_kv_heads: int) -> None:
    # 256 byte symbols + the special tokens are always in the vocabulary
    if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS) + 1}, got {vocab_size}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")


def train_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 512, model_max_length: int = 512, style: str = "chatml"
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts` and wrap it with the ChatML chat template.

    `style="gpt2"` trains a GPT-2 style tokenizer instead: the plain GPT-2 split regex (no digit
    splitting), one special token `<|endoftext|>` (id 0: bos, eos and unk), no pad token and no
    chat template.

    Returns:
        A `PreTrainedTokenizerFast` with at most `vocab_size` tokens (fewer when the texts are
        too short to learn that many merges); ids 0, 1, 2 are the special tokens.

    Raises:
        ValueError: when `texts` holds no text, or `style` is unknown.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if style not in ("chatml", "gpt2"):
        raise ValueError(f"unknown tokenizer style {style!r}: 'chatml' or 'gpt2'")
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("build_tiny_model needs some text to train its tokenizer, got none")
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = byte_level if style == "gpt2" else pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), byte_level]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT] if style == "gpt2" else list(SPECIAL_TOKENS),
        # every byte is a symbol, so any text encodes without an unknown token
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if style == "gpt2":
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                                       unk_token=ENDOFTEXT, model_max_length=model_max_length,
                                       clean_up_tokenization_spaces=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        chat_template=CHATML_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def tiny_config(arch: str, vocab_size: int, ids: dict[str, Any], tie: bool, shape: dict[str, int]) -> Any:
    """The transformers config of a tiny `arch` model (one of `TINY_ARCHS`).

    Args:
        ids: bos/eos/pad token ids; tie: tie the output layer to the embedding;
        shape: hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size,
            max_position_embeddings (as `build_tiny_model` takes them).
    """
    import transformers

    common = {"vocab_size": vocab_size, "tie_word_embeddings": tie, "dtype": "float32", **ids}
    if arch == "gpt2":  # GPT-2 names its sizes its own way and has no grouped-query attention
        return transformers.GPT2Config(n_embd=shape["hidden_size"], n_layer=shape["num_layers"],
                                       n_head=shape["num_heads"], n_inner=shape["intermediate_size"],
                                       n_positions=shape["max_position_embeddings"], **common)
    head_dim = shape["hidden_size"] // shape["num_heads"]
    common.update(hidden_size=shape["hidden_size"], num_hidden_layers=shape["num_layers"],
                  num_attention_heads=shape["num_heads"], num_key_value_heads=shape["num_kv_heads"],
                  intermediate_size=shape["intermediate_size"],
                  max_position_embeddings=shape["max_position_embeddings"])
    if arch == "llama":
        return transformers.LlamaConfig(**common)
    if arch == "qwen3":
        return transformers.Qwen3Config(head_dim=head_dim, **common)
    if arch == "phi3":
        return transformers.Phi3Config(original_max_position_embeddings=shape["max_position_embeddings"],
                                       **common)
    # Gemma: the attention scale is 1/sqrt(head_dim) (llama.cpp assumes it), the sliding window
    # covers the whole context
    gemma = {"head_dim": head_dim}
    if arch == "gemma":
        return transformers.GemmaConfig(**gemma, **common)
    gemma.update(query_pre_attn_scalar=head_dim, sliding_window=shape["max_position_embeddings"])
    if arch == "gemma2":
        return transformers.Gemma2Config(**gemma, **common)
    return transformers.Gemma3TextConfig(**gemma, **common)


def _build_model(tokenizer: Any, *, seed: int, tie_word_embeddings: bool, arch: str = "llama",
                 **shape: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    if arch == "gpt2":
        eot = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
        ids: dict[str, Any] = {"bos_token_id": eot, "eos_token_id": eot}
    else:
        ids = {
            "bos_token_id": tokenizer.convert_tokens_to_ids(IM_START),
            "eos_token_id": tokenizer.convert_tokens_to_ids(IM_END),
            "pad_token_id": tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        }
    # the embedding matches the tokenizer exactly: exporters (GGUF) expect one row per token
    config = tiny_config(arch, len(tokenizer), ids, tie_word_embeddings, shape)
    # fork_rng: seed the init without changing the caller's global RNG state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(**ids)
    return model.eval()


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
    seed: int = 0,
    tie_word_embeddings: bool = True,
    arch: str = "llama",
) -> Path:
    """Build a tiny model folder (Llama unless `arch` says otherwise): BPE tokenizer trained on
    `texts`, random weights.

    The result is deterministic for given texts, sizes and seed (same bytes on disk).

    Args:
        out_dir: folder to write (created; existing files of the same names are overwritten).
        texts: training text for the tokenizer; default: `default_texts()`.
        vocab_size: target tokenizer size; the model's vocabulary is the tokenizer's real size.
        seed: seed of the weight initialisation.
        arch: one of `TINY_ARCHS` (`gpt2` ignores `num_kv_heads`; the Gemmas always tie the
            embeddings, as llama.cpp requires).

    Returns:
        `out_dir` as a Path, holding config.json, generation_config.json, model.safetensors,
        tokenizer.json, tokenizer_config.json and chat_template.jinja.

    Raises:
        ValueError: on inconsistent sizes or empty `texts`.
    """
    if arch not in TINY_ARCHS:
        raise ValueError(f"unknown arch {arch!r}: one of {', '.join(TINY_ARCHS)}")
    _check_shape(vocab_size, hidden_size, num_heads, num_heads if arch == "gpt2" else num_kv_heads)
    tokenizer = train_tokenizer(
        default_texts() if texts is None else texts,
        vocab_size=vocab_size,
        model_max_length=max_position_embeddings,
        style="gpt2" if arch == "gpt2" else "chatml",
    )
    model = _build_model(
        tokenizer,
        seed=seed,
        arch=arch,
        tie_word_embeddings=tie_word_embeddings or arch.startswith("gemma"),
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
