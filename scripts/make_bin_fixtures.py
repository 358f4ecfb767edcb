"""Write the torch.save checkpoint fixtures under tests/fixtures/bin/ for tests/pytorch_bin.rs.

Checkpoints that coca-wgpu must read, each checked here by loading it back with torch.load
(weights_only=True) and comparing every tensor with the safetensors file it must equal:

* small/open_clip_pytorch_model.bin: the float16 `small` parity checkpoint
  (tests/fixtures/parity/small/open_clip_model.safetensors) saved as
  {"state_dict": {"module." + name: tensor}}, the wrapper of a DistributedDataParallel training
  run, next to a copy of its open_clip_config.json. open_clip.create_model("local-dir:...") loads
  the folder to the same state dict as the safetensors folder.
* tiny.safetensors and tiny_f32.bin: a random-init CoCa of a few thousand parameters (vocabulary
  64) in float32. In tiny_f32.bin, text_decoder.cross_attn.0.attn.in_proj_weight and
  in_proj_bias are views into one shared storage (the bias at a non-zero storage offset), and
  visual.proj is a transposed (non-contiguous) view.
* tiny_bf16.safetensors and tiny_bf16.bin: the same tensors rounded to bfloat16 by torch, saved
  as an open_clip training checkpoint ({"epoch", "name", "state_dict" with "module." names,
  "optimizer"}).
* big_endian.bin and big_endian_expected.safetensors: float32, float16 and bfloat16 tensors whose
  storages are byte-swapped and marked `big` in the archive's byteorder record, the layout
  torch.save writes on a big-endian machine. The expected file contains torch.load's values,
  widened to float32 by torch.

Files coca-wgpu must reject without running anything:

* os_system.bin: a pickle that calls os.system("touch pytorch-bin-os-system-marker").
* builtins_eval.bin: a state dict whose value calls builtins.eval on code that touches
  pytorch-bin-eval-marker. This script checks that Python's pickle.loads really creates both
  marker files (in a temporary folder), so the Rust test, which asserts that they do not appear,
  can fail.
* deep_nesting.bin: 100,000 lists nested in each other, which would overflow a recursive
  reader's stack, and self_reference.bin: a list appended to itself.
* numpy_array.bin: torch.save of a dict holding a numpy array (globals from numpy and _codecs).
* complex_tensor.bin: a complex64 tensor (storage type torch.ComplexFloatStorage).
* int64_tensor.bin: an int64 tensor (torch.LongStorage), a known storage that is not a weight dtype.
* expanded_tensor.bin: a tensor expanded with stride 0, which has more elements than its storage.
* legacy.bin: the pre-1.6 format (_use_new_zipfile_serialization=False), which is not a zip archive.
* short_storage.bin: a torch.save archive whose storage entry lost its second half, which
  torch.load also rejects.

Every torch.save output is disassembled with pickletools and the script prints the globals it
imports, which is how the Rust reader's allow-list was chosen.

Rerun from the repository root with the reference environment (torch, open-clip-torch==3.3.0,
safetensors, numpy):

    python scripts/make_bin_fixtures.py
"""

import copy
import os
import pickle
import pickletools
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import open_clip
import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "bin"
SMALL_DIR = REPO_ROOT / "tests" / "fixtures" / "parity" / "small"

# The globals that torch.save emits for dictionaries of float tensors. The Rust reader allows them.
PLAIN_GLOBALS = {
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch FloatStorage",
    "torch HalfStorage",
    "torch BFloat16Storage",
}

TINY_CFG = {
    "embed_dim": 8,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 16, "head_width": 8, "patch_size": 8,
                   "attentional_pool": True, "attn_pooler_queries": 4, "attn_pooler_heads": 2,
                   "output_tokens": True},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 8, "heads": 2, "layers": 1,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 8, "vocab_size": 64, "width": 8, "heads": 2, "layers": 1,
                       "attn_pooler_heads": 2},
}

OS_SYSTEM_MARKER = "pytorch-bin-os-system-marker"
EVAL_MARKER = "pytorch-bin-eval-marker"


def pickle_globals(path: Path) -> set:
    """Return the `module name` pairs that the archive's data.pkl imports with GLOBAL."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        data = archive.read(name)
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def check_equal(path: Path, loaded: dict, expected: dict) -> None:
    """Raise unless `loaded` has exactly the tensors of `expected`, bit for bit."""
    if set(loaded) != set(expected):
        raise RuntimeError(f"{path}: tensor names differ: {sorted(set(loaded) ^ set(expected))}")
    for name, tensor in expected.items():
        if loaded[name].dtype != tensor.dtype or not torch.equal(loaded[name], tensor):
            raise RuntimeError(f"{path}: `{name}` does not load back as written")


def write_small() -> None:
    """Save the float16 small parity checkpoint in open_clip's DistributedDataParallel wrapper."""
    state_dict = load_file(str(SMALL_DIR / "open_clip_model.safetensors"))
    folder = OUT_DIR / "small"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SMALL_DIR / "open_clip_config.json", folder / "open_clip_config.json")
    path = folder / "open_clip_pytorch_model.bin"
    torch.save({"state_dict": {"module." + k: v for k, v in state_dict.items()}}, path)

    loaded = torch.load(path, weights_only=True)["state_dict"]
    check_equal(path, {k.removeprefix("module."): v for k, v in loaded.items()}, state_dict)
    from_bin = open_clip.create_model(f"local-dir:{folder}").state_dict()
    from_safetensors = open_clip.create_model(f"local-dir:{SMALL_DIR}").state_dict()
    check_equal(path, from_bin, from_safetensors)
    print(f"{path.relative_to(REPO_ROOT)}: {len(state_dict)} tensors, globals {sorted(pickle_globals(path))}")


def tiny_state_dict() -> dict:
    """Return a random-init tiny CoCa's state dict (an OrderedDict with _metadata) in float32."""
    torch.manual_seed(0)
    model = open_clip.CoCa(**copy.deepcopy(TINY_CFG))
    # open_clip leaves text_decoder.text_projection uninitialized (torch.empty).
    torch.nn.init.normal_(model.text_decoder.text_projection, std=TINY_CFG["multimodal_cfg"]["width"] ** -0.5)
    state_dict = model.state_dict()
    for name, tensor in state_dict.items():
        state_dict[name] = tensor.detach().clone()
    return state_dict


def write_tiny_f32(state_dict: dict) -> None:
    """Save the float32 tiny checkpoint with a shared storage and a transposed view."""
    save_file(dict(state_dict), str(OUT_DIR / "tiny.safetensors"))

    views = copy.copy(state_dict)
    weight_name = "text_decoder.cross_attn.0.attn.in_proj_weight"
    bias_name = "text_decoder.cross_attn.0.attn.in_proj_bias"
    weight, bias = state_dict[weight_name], state_dict[bias_name]
    shared = torch.cat([weight.flatten(), bias])
    views[weight_name] = shared[: weight.numel()].view(weight.shape)
    views[bias_name] = shared[weight.numel():]
    views["visual.proj"] = state_dict["visual.proj"].t().contiguous().t()
    path = OUT_DIR / "tiny_f32.bin"
    torch.save(views, path)

    loaded = torch.load(path, weights_only=True)
    check_equal(path, loaded, state_dict)
    if loaded[bias_name].storage_offset() != weight.numel():
        raise RuntimeError(f"{path}: `{bias_name}` is not stored at offset {weight.numel()}")
    if loaded[bias_name].untyped_storage().data_ptr() != loaded[weight_name].untyped_storage().data_ptr():
        raise RuntimeError(f"{path}: `{weight_name}` and `{bias_name}` do not share a storage")
    if loaded["visual.proj"].is_contiguous():
        raise RuntimeError(f"{path}: `visual.proj` is contiguous")
    print(f"{path.relative_to(REPO_ROOT)}: {len(loaded)} tensors, globals {sorted(pickle_globals(path))}")


def write_tiny_bf16(state_dict: dict) -> None:
    """Save the tiny checkpoint in bfloat16 as an open_clip training checkpoint."""
    rounded = {k: v.to(torch.bfloat16) for k, v in state_dict.items()}
    save_file(rounded, str(OUT_DIR / "tiny_bf16.safetensors"))

    parameters = [torch.nn.Parameter(v.clone()) for v in rounded.values()]
    optimizer = torch.optim.AdamW(parameters)
    sum(p.float().sum() for p in parameters).backward()
    optimizer.step()
    checkpoint = {
        "epoch": 1,
        "name": "tiny",
        "state_dict": {"module." + k: v for k, v in rounded.items()},
        "optimizer": optimizer.state_dict(),
    }
    path = OUT_DIR / "tiny_bf16.bin"
    torch.save(checkpoint, path)

    loaded = torch.load(path, weights_only=True)["state_dict"]
    check_equal(path, {k.removeprefix("module."): v for k, v in loaded.items()}, rounded)
    print(f"{path.relative_to(REPO_ROOT)}: {len(loaded)} tensors, globals {sorted(pickle_globals(path))}")


def write_big_endian() -> None:
    """Rewrite a little-endian archive with byte-swapped storages and byteorder `big`."""
    torch.manual_seed(1)
    values = torch.randn(2, 3)
    tensors = {"f32": values, "f16": values.to(torch.float16), "bf16": values.to(torch.bfloat16)}
    with tempfile.TemporaryDirectory() as tmp:
        little = Path(tmp) / "big_endian.bin"
        torch.save(tensors, little)
        path = OUT_DIR / "big_endian.bin"
        with zipfile.ZipFile(little) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
            # Element width by storage size: 24 bytes of float32, 12 bytes of float16 or bfloat16.
            storages = {t.untyped_storage().nbytes(): t.element_size() for t in tensors.values()}
            for info in source.infolist():
                data = source.read(info)
                if info.filename.endswith("/byteorder"):
                    data = b"big"
                elif "/data/" in info.filename:
                    width = storages[len(data)]
                    data = np.frombuffer(data, dtype=f"<u{width}").byteswap().tobytes()
                target.writestr(info.filename, data)

    loaded = torch.load(path, weights_only=True)
    check_equal(path, loaded, tensors)
    save_file({k: v.float() for k, v in loaded.items()}, str(OUT_DIR / "big_endian_expected.safetensors"))
    print(f"{path.relative_to(REPO_ROOT)}: globals {sorted(pickle_globals(path))}")


def torch_archive(path: Path, pickle_bytes: bytes) -> None:
    """Write `pickle_bytes` as data.pkl of a torch.save-style zip archive without storages."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", b"little")
        archive.writestr("archive/version", b"3\n")


def binunicode(text: str) -> bytes:
    """Return the BINUNICODE opcode that pushes `text`."""
    encoded = text.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def check_runs_code(pickle_bytes: bytes, marker: str) -> None:
    """Raise unless unpickling `pickle_bytes` with Python's pickle creates `marker`."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            pickle.loads(pickle_bytes)
            created = Path(marker).exists()
        finally:
            os.chdir(cwd)
    if not created:
        raise RuntimeError(f"the pickle that should touch {marker} did not")


def write_malicious() -> None:
    """Write pickles that run shell commands when Python unpickles them."""
    # PROTO 2, GLOBAL os.system, the command, TUPLE1, REDUCE, STOP: os.system(command).
    os_system = b"\x80\x02cos\nsystem\n" + binunicode(f"touch {OS_SYSTEM_MARKER}") + b"\x85R."
    check_runs_code(os_system, OS_SYSTEM_MARKER)
    torch_archive(OUT_DIR / "os_system.bin", os_system)

    # {"weight": builtins.eval(code)}: EMPTY_DICT, MARK, key, GLOBAL, code, TUPLE1, REDUCE, SETITEMS.
    code = f"__import__('os').system('touch {EVAL_MARKER}')"
    builtins_eval = b"\x80\x02}(" + binunicode("weight") + b"cbuiltins\neval\n" + binunicode(code) + b"\x85Ru."
    check_runs_code(builtins_eval, EVAL_MARKER)
    torch_archive(OUT_DIR / "builtins_eval.bin", builtins_eval)

    for name in ["os_system.bin", "builtins_eval.bin"]:
        try:
            torch.load(OUT_DIR / name, weights_only=True)
        except pickle.UnpicklingError:
            pass
        else:
            raise RuntimeError(f"torch.load(weights_only=True) accepted {name}")
    print("os_system.bin, builtins_eval.bin: run code under pickle.loads, rejected by torch.load(weights_only=True)")

    # EMPTY_LIST 100,000 times, then APPEND 99,999 times: each list goes into the one below it.
    depth = 100_000
    torch_archive(OUT_DIR / "deep_nesting.bin", b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")
    # EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: the list contains itself.
    self_reference = b"\x80\x02]q\x00h\x00a."
    value = pickle.loads(self_reference)
    if value[0] is not value:
        raise RuntimeError("self_reference.bin does not unpickle to a list that contains itself")
    torch_archive(OUT_DIR / "self_reference.bin", self_reference)


def write_unsupported() -> None:
    """Write torch.save outputs that are not dictionaries of float tensors, and a legacy file."""
    files = {
        "numpy_array.bin": {"weight": np.arange(3, dtype=np.float32)},
        "complex_tensor.bin": {"weight": torch.zeros(2, dtype=torch.complex64)},
        "int64_tensor.bin": {"position_ids": torch.arange(4)},
        "expanded_tensor.bin": {"weight": torch.ones(1).expand(4)},
    }
    for name, value in files.items():
        torch.save(value, OUT_DIR / name)
        print(f"{name}: globals {sorted(pickle_globals(OUT_DIR / name))}")
    if torch.load(OUT_DIR / "expanded_tensor.bin", weights_only=True)["weight"].stride() != (0,):
        raise RuntimeError("expanded_tensor.bin: torch.save did not keep the stride 0")

    torch.save({"weight": torch.ones(2)}, OUT_DIR / "legacy.bin", _use_new_zipfile_serialization=False)
    if zipfile.is_zipfile(OUT_DIR / "legacy.bin"):
        raise RuntimeError("legacy.bin is a zip archive")

    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "short_storage.bin"
        torch.save({"weight": torch.arange(8, dtype=torch.float32)}, whole)
        path = OUT_DIR / "short_storage.bin"
        with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
            for info in source.infolist():
                data = source.read(info)
                target.writestr(info.filename, data[: len(data) // 2] if "/data/" in info.filename else data)
    try:
        torch.load(path, weights_only=True)
    except RuntimeError:
        pass
    else:
        raise RuntimeError("torch.load accepted short_storage.bin")


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_small()
    state_dict = tiny_state_dict()
    write_tiny_f32(state_dict)
    write_tiny_bf16(state_dict)
    write_big_endian()
    write_malicious()
    write_unsupported()

    for path in [OUT_DIR / "small/open_clip_pytorch_model.bin", OUT_DIR / "tiny_f32.bin", OUT_DIR / "tiny_bf16.bin"]:
        extra = pickle_globals(path) - PLAIN_GLOBALS
        if extra:
            raise RuntimeError(f"{path}: torch.save emitted globals outside the allow-list: {sorted(extra)}")
    (OUT_DIR / "README.md").write_text(
        "Made by scripts/make_bin_fixtures.py (its docstring describes each file) with torch "
        f"{torch.__version__} and open_clip {open_clip.__version__}.\n"
    )


if __name__ == "__main__":
    main()
