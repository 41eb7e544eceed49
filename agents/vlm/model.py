"""Vision-language models for the VLM agent: load one from a local folder, or build a tiny one.

Real models load from a local folder only (no hub access, no ``trust_remote_code``) through
``AutoProcessor`` and ``AutoModelForImageTextToText`` (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, ...).
The tiny model used by the tests, CI and the CPU demo is a random Qwen2-VL built from a config
with a byte-level BPE tokenizer trained on the fly (``../shared/notes/rl-vlm.md`` §4); it is
saved to a folder first and then loaded through exactly the code path of a real checkpoint.

LoRA adapters (peft) are what training changes and what is saved; the reference policy of
GRPO/PPO is the same model with the adapter disabled.

Example:
    >>> from agents.vlm.model import build_tiny, load_vlm
    >>> path = build_tiny("runs/tiny-base", corpus=["denoise the image"])  # doctest: +SKIP
    >>> vlm = load_vlm(path, lora=LoraSpec())  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from agents.vlm.errors import ModelLoadError, ModelNotFoundError
from tir_env.device import resolve_device

logger = logging.getLogger(__name__)
# Third-party noise on every load, none of it actionable here: bitsandbytes (pulled in by peft)
# warns that an optional CPU kernel package is absent; peft probes a deprecated transformers
# attribute.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

#: Special tokens of the Qwen2-VL family, plus the tool-call tags (added tokens in Qwen).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
)

#: Qwen-style chat template (system/user/assistant, images as vision placeholders).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: LoRA targets of the language model in the Qwen families (attention and MLP).
LM_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
#: Extra LoRA target of the tiny model: its random ``lm_head`` behind a fixed final norm caps
#: the logits near +-1 (a flat softmax over the vocabulary, loss stuck near 6) unless adapted.
TINY_TARGETS: tuple[str, ...] = ("lm_head",)
#: Modules the tiny model trains in full (saved with the adapter): its vision tower starts
#: random, and low-rank updates of a random 32-wide ViT did not learn to tell degradations
#: apart (the SFT policy then ignored the image and chose tasks at chance).
TINY_FULL: tuple[str, ...] = ("visual",)

#: File written next to a model to record what this package needs to know about it.
META_FILE = "tir_vlm.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

DTypeName = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class TinySpec:
    """Shape of the tiny Qwen2-VL built from a config.

    Attributes:
        hidden_size: Width of the language model (and of the vision merger's output).
        layers: Decoder layers.
        heads: Attention heads (head dim = hidden_size / heads, even).
        kv_heads: Key/value heads.
        intermediate_size: MLP width of the language model.
        vision_dim: Width of the vision transformer.
        vision_depth: Vision transformer blocks.
        vision_heads: Vision attention heads.
        vision_mlp_ratio: MLP width of the vision blocks over ``vision_dim``.
        vocab_size: Size of the BPE vocabulary trained on the corpus.
        vocab_rows: Rows of the embedding (``None``: the tokenizer's size). A real model's
            count (151,936 for Qwen2-VL) gives its memory footprint; rows past the
            tokenizer's are never used.
        tie_embeddings: Share the input embedding with the output head (Qwen2-VL-2B does).
        rope_theta: Base of the rotary position embedding.
        image_size: Longest side of the images given to the vision tower (multiple of 28).
        tiny_training: Train the vision tower in full and adapt ``lm_head`` too (what a
            random tiny model needs to learn to see in minutes); off, LoRA adapts the
            language model's projections only, as the published recipes for real
            checkpoints do.
        init_std: Standard deviation of the random weights (``None``: 1/sqrt(hidden_size)).
            The transformers default, 0.02, is sized for widths in the thousands; at width 64
            it leaves attention uniform over the ~600-token context, and the SFT policy never
            learned to look at the image tokens (task choice stayed at chance).
        seed: Seed of the random weights.
    """

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 128
    vision_dim: int = 32
    vision_depth: int = 2
    vision_heads: int = 2
    vision_mlp_ratio: int = 2
    vocab_size: int = 2048
    vocab_rows: int | None = None
    tie_embeddings: bool = False
    rope_theta: float = 1e4
    image_size: int = 112
    tiny_training: bool = True
    init_std: float | None = None
    seed: int = 0


#: Qwen2-VL-2B's architecture (its published ``config.json``: 28 layers, 1536 wide, 12 heads,
#: 2 key/value heads, MLP 8960; a 32-block, 1280-wide vision tower; 151,936 embedding rows,
#: tied), built with random weights: what ``benchmarks.vlm_gpu_check --arch qwen2-vl-2b``
#: trains for one step on a GPU to measure memory and step time at real size, with no
#: download. About 2.2 billion parameters.
QWEN2_VL_2B = TinySpec(
    hidden_size=1536,
    layers=28,
    heads=12,
    kv_heads=2,
    intermediate_size=8960,
    vision_dim=1280,
    vision_depth=32,
    vision_heads=16,
    vision_mlp_ratio=4,
    vocab_rows=151936,
    tie_embeddings=True,
    rope_theta=1e6,
    image_size=448,
    tiny_training=False,
    init_std=0.02,
)


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter shape.

    Attributes:
        r: Rank.
        alpha: Scale numerator (the update is ``alpha / r * B A``).
        dropout: Dropout on the adapter input (0 keeps rollouts and re-scoring identical).
        targets: Module-name suffixes to adapt (``None``: the model folder's choice, else
            :data:`LM_TARGETS`).
        full: Modules trained in full and saved with the adapter (``None``: the model
            folder's choice, else none).
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    targets: tuple[str, ...] | None = None
    full: tuple[str, ...] | None = None


@dataclass
class VLM:
    """A loaded model with its processor, ready for prompts.

    Attributes:
        model: The (peft-wrapped when it has an adapter) image-text-to-text model.
        processor: Its processor (tokenizer, image processor, chat template).
        path: The base model folder.
        device: Where the model runs.
        image_size: Longest image side fed to the vision tower.
        meta: Contents of the folder's ``tir_vlm.json`` (empty for foreign checkpoints).
    """

    model: Any
    processor: Any
    path: Path
    device: torch.device
    image_size: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        """The processor's tokenizer."""
        return self.processor.tokenizer

    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA adapter wraps the model."""
        return hasattr(self.model, "disable_adapter")

    def token_id(self, token: str) -> int | None:
        """Id of a token string, or ``None`` when the vocabulary lacks it."""
        tid = self.tokenizer.convert_tokens_to_ids(token)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        return None if tid is None or (unk is not None and tid == unk) else int(tid)

    @property
    def eos_ids(self) -> list[int]:
        """Tokens that end an assistant turn (``<|im_end|>``, and the tokenizer's eos)."""
        ids = [self.token_id("<|im_end|>"), self.tokenizer.eos_token_id]
        return sorted({int(i) for i in ids if i is not None})

    @property
    def pad_id(self) -> int:
        """Padding token id."""
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.eos_ids[0])

    @property
    def suppress_ids(self) -> list[int]:
        """Vision placeholder tokens a policy must never sample (``notes/rl-vlm.md`` §3.2)."""
        config = getattr(self.base_model, "config", None)
        names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        ids = [getattr(config, n, None) for n in names]
        return sorted({int(i) for i in ids if i is not None})

    @property
    def base_model(self) -> Any:
        """The underlying transformers model (under the peft wrapper, if any)."""
        return self.model.get_base_model() if self.has_adapter else self.model

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters that require gradients (the adapter's)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def save_adapter(self, folder: str | Path) -> Path:
        """Write the LoRA adapter (``adapter_config.json`` + safetensors) to ``folder``."""
        if not self.has_adapter:
            raise ModelLoadError("this model has no LoRA adapter to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # The embeddings are frozen (lm_head only carries LoRA factors): do not save copies.
        self.model.save_pretrained(
            str(folder), safe_serialization=True, save_embedding_layers=False
        )
        return folder


# ------------------------------------------------------------------------- tiny model
def build_tokenizer(corpus: Iterable[str], vocab_size: int, words: Sequence[str] = ()) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus``, with the Qwen special tokens.

    ``words`` become whole tokens (ordinary, not special: they decode as text).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    tok.add_tokens([AddedToken(w, single_word=True, normalized=False) for w in words])
    return tok


def _mrope_section(head_dim: int) -> list[int]:
    """Split of the rotary half-dimension over (time, height, width); sums to head_dim/2."""
    half = head_dim // 2
    side = half * 3 // 8
    return [half - 2 * side, side, side]


def model_config(spec: TinySpec, tok: Any) -> Any:
    """The ``Qwen2VLConfig`` of ``spec`` for tokenizer ``tok`` (its special tokens' ids)."""
    from transformers import Qwen2VLConfig

    ids = tok.convert_tokens_to_ids
    head_dim = spec.hidden_size // spec.heads
    std = spec.init_std if spec.init_std is not None else spec.hidden_size**-0.5
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=max(len(tok), spec.vocab_rows or 0),
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            num_key_value_heads=spec.kv_heads,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": spec.rope_theta,
                "mrope_section": _mrope_section(head_dim),
            },
            initializer_range=std,
            bos_token_id=ids("<|endoftext|>"),
            eos_token_id=ids("<|im_end|>"),
            pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=spec.vision_depth,
            embed_dim=spec.vision_dim,
            num_heads=spec.vision_heads,
            mlp_ratio=spec.vision_mlp_ratio,
            hidden_size=spec.hidden_size,
            initializer_range=std,
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=spec.tie_embeddings,
    )


def build_tiny(
    folder: str | Path,
    corpus: Iterable[str],
    spec: TinySpec = TinySpec(),
    words: Sequence[str] = (),
    dtype: torch.dtype | None = None,
) -> Path:
    """Build a random tiny Qwen2-VL and its processor offline, and save both to ``folder``.

    The folder then loads with :func:`load_vlm` exactly like a downloaded checkpoint.

    Args:
        folder: Output folder (created).
        corpus: Text the BPE vocabulary is trained on (prompts and tool calls).
        spec: Model shape.
        words: Whole-word tokens, e.g. the tool names: a 2-layer, 64-wide random model
            trained for minutes on a CPU does not learn to bind a name spread over several
            BPE pieces (it writes "jpeg_denoise"), but picks one token out of many easily.
        dtype: Dtype the weights are saved in (``None``: float32); ``torch.bfloat16``
            halves the folder of a large spec.

    Returns:
        The folder.
    """
    from transformers import (
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    if spec.image_size % 28 or spec.hidden_size % spec.heads:
        raise ValueError("image_size must be a multiple of 28 and hidden_size of heads")
    tok = build_tokenizer(corpus, spec.vocab_size, words)
    image_processor = Qwen2VLImageProcessor(
        min_pixels=28 * 28, max_pixels=spec.image_size * spec.image_size
    )
    processor = Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    config = model_config(spec, tok)
    torch.manual_seed(spec.seed)
    model = Qwen2VLForConditionalGeneration(config)
    if dtype is not None:
        model.to(dtype=dtype)  # type: ignore[call-arg]  # in place; transformers' stub
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    processor.save_pretrained(str(folder))
    meta = {
        "kind": "tiny-qwen2-vl",
        "image_size": spec.image_size,
        "prompt_detail": "brief",
        "lora_targets": list(LM_TARGETS + (TINY_TARGETS if spec.tiny_training else ())),
        "full_modules": list(TINY_FULL if spec.tiny_training else ()),
        "spec": asdict(spec),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


# --------------------------------------------------------------------------- loading
def check_model_dir(folder: str | Path) -> Path:
    """Check that ``folder`` looks like a saved model; return it.

    Raises:
        ModelNotFoundError: the folder, its ``config.json``, weights or tokenizer is missing.
        ModelLoadError: ``config.json`` is not valid JSON.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"model folder {folder} not found. Put a checkpoint there (e.g. a local copy of "
            "Qwen2.5-VL-3B-Instruct) or build the tiny test model with "
            "`tir train sft --build-tiny --model DIR`"
        )
    config = folder / "config.json"
    if not config.is_file():
        raise ModelNotFoundError(f"model folder {folder} has no config.json")
    try:
        json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"corrupt {config}: not valid JSON ({err})") from err
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelNotFoundError(
            f"model folder {folder} has no weights; expected one of {', '.join(WEIGHT_FILES)}"
        )
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelNotFoundError(
            f"model folder {folder} has no tokenizer; expected one of {', '.join(TOKENIZER_FILES)}"
        )
    return folder


def check_adapter_dir(folder: str | Path) -> Path:
    """Check that ``folder`` holds a saved LoRA adapter; return it.

    Raises:
        ModelNotFoundError: the folder or one of its files is missing.
    """
    folder = Path(folder)
    missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"adapter folder {folder} is missing {', '.join(missing)}; train one with "
            "`tir train sft` or `tir train grpo`"
        )
    return folder


def _dtype(name: DTypeName, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def load_vlm(
    folder: str | Path,
    adapter: str | Path | None = None,
    *,
    merge: Sequence[str | Path] = (),
    lora: LoraSpec | None = None,
    trainable: bool = False,
    device: str | torch.device = "cpu",
    dtype: DTypeName = "auto",
    image_size: int | None = None,
) -> VLM:
    """Load a model folder (and optionally an adapter) the way a real checkpoint loads.

    Args:
        folder: Base model folder (``config.json``, weights, processor files).
        adapter: LoRA adapter folder to load on top (``None``: none).
        merge: Adapter folders merged into the weights first, in order. RL merges the SFT
            adapter so that "adapter disabled" (the reference policy) is the SFT policy.
        lora: Without ``adapter``, attach a fresh LoRA adapter of this shape (``None``: none).
        trainable: Whether a loaded adapter's parameters require gradients.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        dtype: Weight dtype; ``"auto"`` is bfloat16 on CUDA and float32 on the CPU.
        image_size: Longest image side for the vision tower (default: the folder's
            ``tir_vlm.json``, else 448).

    Raises:
        ModelNotFoundError: a folder or a required file is missing.
        ModelLoadError: files exist but do not load (corrupt or incompatible).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = check_model_dir(folder)
    meta = _read_meta(folder)
    dev = resolve_device(device)
    try:
        processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(
            str(folder), local_files_only=True, dtype=_dtype(dtype, dev)
        )
    except Exception as err:  # noqa: BLE001 - safetensors, json, torch... all mean "corrupt"
        raise ModelLoadError(f"cannot load the model in {folder}: {err}") from err
    model.to(dev)  # type: ignore[arg-type]
    for folder_ in merge:
        model = _load_adapter(model, folder_, trainable=False).merge_and_unload()
    if adapter is not None:
        model = _load_adapter(model, adapter, trainable)
    elif lora is not None:
        model = _attach_lora(model, lora, meta)
    if not trainable and adapter is not None:
        model.eval()
    size = int(image_size or meta.get("image_size", 448))
    return VLM(model, processor, folder, dev, size, meta)


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ModelLoadError(f"corrupt {path}: {err}") from err
    return data if isinstance(data, dict) else {}


#: Loggers that speak while peft imports bitsandbytes (see :func:`import_peft`).
IMPORT_NOISE = ("kernels", "bitsandbytes")


def import_peft() -> Any:
    """``peft``, imported with the Hugging Face Hub offline and its dependencies' noise off.

    peft imports bitsandbytes (installed with pyiqa), which on a CPU with AVX512-BF16 asks the
    Hub at import for a matrix kernel TIR never uses: a network call as a side effect of
    loading a model, and a warning either way ("Failed to load CPU gemm_4bit_forward", or
    offline "Skipping publisher trust check"). Offline, nothing is fetched; the loggers of
    :data:`IMPORT_NOISE` are quiet during the import only. Some peft versions import
    bitsandbytes later, when a LoRA layer is first made; it is imported here too, so that later
    import finds it loaded and says nothing.
    """
    from tir_env.files import environ_set
    from tir_env.metrics.weights import hf_offline

    loggers = [logging.getLogger(name) for name in IMPORT_NOISE]
    levels = [lg.level for lg in loggers]
    with environ_set("HF_HUB_OFFLINE", "1"), hf_offline():
        try:
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            import peft

            if importlib.util.find_spec("bitsandbytes") is not None:
                import bitsandbytes  # noqa: F401
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
    return peft


def _attach_lora(model: Any, spec: LoraSpec, meta: dict[str, Any]) -> Any:
    peft = import_peft()
    LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model  # noqa: N806

    targets = spec.targets or tuple(meta.get("lora_targets", LM_TARGETS))
    full = spec.full if spec.full is not None else tuple(meta.get("full_modules", ()))
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(targets),
        modules_to_save=list(full) or None,
    )
    return get_peft_model(model, config)


def _load_adapter(model: Any, adapter: str | Path, trainable: bool) -> Any:
    PeftModel = import_peft().PeftModel  # noqa: N806

    folder = check_adapter_dir(adapter)
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)
    except Exception as err:  # noqa: BLE001 - any failure here means a corrupt adapter
        raise ModelLoadError(f"cannot load the adapter in {folder}: {err}") from err


def build_tiny_for_tools(
    folder: str | Path,
    tools: Sequence[str],
    spec: TinySpec = TinySpec(),
    dtype: torch.dtype | None = None,
) -> Path:
    """:func:`build_tiny` with the corpus and whole-word tool names of a tool list."""
    from agents.vlm import prompt

    return build_tiny(folder, prompt.corpus(tools), spec, prompt.tool_words(tools), dtype)
