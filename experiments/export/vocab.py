"""Which tokenizer a production export names, and whether the model's vocabulary holds it.

Why: a training YAML that pairs a tokenizer with a smaller embedding table fails at the first
token id past the table (GPT-2's 50257 ids against vocab_size 2048). The check runs offline:
a local tokenizer (a `tokenizer.json` or a folder holding one) is read; a hub name must be one
whose size is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# tokens in well-known hub tokenizers (len(AutoTokenizer.from_pretrained(name)))
KNOWN_TOKENIZERS: dict[str, int] = {
    "gpt2": 50257,
    "EleutherAI/gpt-neox-20b": 50277,  # MPT's, padded to vocab_size 50368
    "meta-llama/Llama-2-7b-hf": 32000,
    "meta-llama/Meta-Llama-3-8B": 128256,
}


@dataclass(frozen=True)
class TokenizerChoice:
    """The tokenizer a training config names (`name` as LLM Foundry's `tokenizer.name`)."""

    name: str
    size: int  # number of token ids it produces


def resolve_tokenizer(name: str) -> TokenizerChoice:
    """Size `name` offline. Raises ValueError when it cannot be sized, saying what to give."""
    path = Path(name).expanduser()
    if path.exists():
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise ValueError(f"tokenizer folder {name!r} holds no tokenizer.json")
        from tokenizers import Tokenizer

        return TokenizerChoice(name, Tokenizer.from_file(str(file)).get_vocab_size())
    if name in KNOWN_TOKENIZERS:
        return TokenizerChoice(name, KNOWN_TOKENIZERS[name])
    raise ValueError(
        f"tokenizer {name!r} is neither a local tokenizer.json (or a folder with one) nor a "
        f"known hub tokenizer ({', '.join(sorted(KNOWN_TOKENIZERS))}); its vocabulary cannot "
        "be checked against the model's"
    )


def check_vocab(tokenizer: TokenizerChoice, vocab_size: int) -> None:
    """Raise ValueError when the tokenizer's ids do not fit the embedding table."""
    if tokenizer.size > vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer.name!r} has {tokenizer.size} tokens but the pick's "
            f"vocab_size is {vocab_size}: ids past {vocab_size - 1} index out of range. Give "
            "the tokenizer the sweep trained with (at most vocab_size tokens), or sweep with "
            f"vocab_size >= {tokenizer.size} (a multiple of 64 pads it, as MPT does)"
        )
