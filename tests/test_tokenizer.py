"""The shipped BPE equals tiktoken's `gpt2` encoding and Hugging Face's GPT2TokenizerFast, and round-trips."""

import hashlib
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import ENDOFTEXT_ID, Tokenizer, data_dir, verify_files

TEXTS = [
    "Hello, I'm a language model,",
    "  leading spaces,\ttabs\t\tand\n\n\nnewlines   \n",
    "Ünïcödé façade — naïve café; 日本語のテキスト; Ελληνικά; русский текст",
    "emoji: 🤖🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "def f(x):\n    return x ** 2  # square\n\nclass A(object):\n\tpass\n",
    "numbers 1234567890 3.14159 1e-10 0x1F and contractions: I'm, you're, it's, we'll, they've, he'd",
    "text<|endoftext|>more text",
    "",
    "   ",
    "a" * 500,
    "URL https://example.com/path?q=1&r=2 and <html><body>tags</body></html>",
]

OPENAI_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


@pytest.fixture(scope="module")
def tiktoken_gpt2(tmp_path_factory):
    """tiktoken's own `gpt2` encoding, served from a cache filled with our files (tiktoken checks their sha256)."""
    import os

    import tiktoken

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in OPENAI_URLS.items():
        shutil.copy(data_dir() / name, cache / hashlib.sha1(url.encode()).hexdigest())
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.get_encoding("gpt2")
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR")
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    from transformers import GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("hf-tokenizer")
    shutil.copy(data_dir() / "encoder.json", folder / "vocab.json")
    shutil.copy(data_dir() / "vocab.bpe", folder / "merges.txt")
    return GPT2TokenizerFast.from_pretrained(folder)


def test_shipped_files_have_tiktokens_hashes():
    digests = verify_files()
    assert digests["encoder.json"].startswith("196139668be6")
    assert digests["vocab.bpe"].startswith("1ce1664773c5")
    assert (data_dir() / "LICENSE-GPT2-BPE.txt").read_text().count("MIT") >= 2


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_tiktoken_and_huggingface(text, tiktoken_gpt2, hf_tokenizer):
    ours = Tokenizer().encode(text)
    assert ours == tiktoken_gpt2.encode(text, allowed_special="all")
    assert ours == hf_tokenizer(text)["input_ids"]


def test_endoftext_is_handled_explicitly():
    tok = Tokenizer()
    assert tok.encode("<|endoftext|>") == [ENDOFTEXT_ID]
    as_text = tok.encode("<|endoftext|>", allow_special=False)
    assert ENDOFTEXT_ID not in as_text and tok.decode(as_text) == "<|endoftext|>"
    assert tok.decode([ENDOFTEXT_ID]) == "<|endoftext|>"
    assert tok.to_str_tokens("Hello world<|endoftext|>") == ["Hello", " world", "<|endoftext|>"]


def test_vocabulary_and_errors():
    tok = Tokenizer()
    assert len(tok.vocab) == 50257 and tok.vocab[50256] == "<|endoftext|>" and tok.vocab[262] == " the"
    with pytest.raises(InputError, match="outside GPT-2's vocabulary"):
        tok.decode([50257])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_any_string(text):
    tok = Tokenizer()
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, allow_special=False)) == text
