//! Reading `torch.save` checkpoints such as open_clip's `open_clip_pytorch_model.bin` without
//! running any code they contain.
//!
//! Since PyTorch 1.6, torch.save writes a zip archive: `<prefix>/data.pkl` pickles the saved
//! object, each tensor in it refers to a storage by key, `<prefix>/data/<key>` contains that
//! storage's raw elements, and `<prefix>/byteorder` (PyTorch 2.1 and later) records their byte
//! order. A pickle can call any Python function, so [`pickle`] interprets only what torch.save
//! emits for dictionaries of tensors and rejects everything else.
//!
//! open_clip's `load_checkpoint` (3.3.0) unwraps a top-level `state_dict` entry and strips the
//! `module.` prefix that DistributedDataParallel adds; [`read_state_dict`] does the same.

mod pickle;
mod zip;

use std::collections::HashMap;
use std::rc::Rc;

use pickle::{Key, StorageType, TensorRef, Value};

use crate::model::weights::HostTensor;

/// The explanation appended to every rejected pickle construct.
const NOT_A_TENSOR_DICTIONARY: &str = "the file is not a plain dictionary of tensors, and coca-wgpu never runs \
    code from a checkpoint. If you trust the file, load it in Python with torch.load and save its state dict with \
    safetensors.torch.save_file";

/// The bytes after the PROTO opcode at the start of torch.save's legacy format (PyTorch before 1.6,
/// or `_use_new_zipfile_serialization=False`): LONG1 of 10 bytes, torch's magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: [u8; 12] = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Reads the state dict of a torch.save archive: its tensors in file order, named as open_clip
/// names them, with float32, float16 and bfloat16 values widened to f32. Errors are reasons
/// without the file name.
pub(crate) fn read_state_dict(bytes: &[u8]) -> Result<Vec<(String, HostTensor)>, String> {
    check_format(bytes)?;
    let archive = zip::Archive::parse(bytes)?;
    let prefix = archive_prefix(&archive)?;
    let big_endian = is_big_endian(&archive, &prefix)?;

    let pickle_bytes = archive.read(&format!("{prefix}data.pkl"))?;
    let root = pickle::unpickle(pickle_bytes).map_err(|reason| format!("{reason}; {NOT_A_TENSOR_DICTIONARY}"))?;
    let tensors = state_dict_tensors(&root)?;

    // Views share storages, so each storage entry is read and checked once.
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    let mut result = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let key = &tensor.storage.key;
        let data = match storages.get(key) {
            Some(data) => *data,
            None => {
                let data = archive
                    .read(&format!("{prefix}data/{key}"))
                    .map_err(|reason| format!("storage of tensor `{name}`: {reason}"))?;
                storages.insert(key.clone(), data);
                data
            }
        };
        let values = tensor_values(&name, &tensor, data, big_endian)?;
        result.push((name, HostTensor { shape: tensor.shape.clone(), data: values }));
    }
    Ok(result)
}

/// Rejects, with the fix, files that are not torch.save zip archives.
fn check_format(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(());
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if b"PK\x03\x04".starts_with(bytes) {
        return Err("the file ends inside its first zip header; it is truncated".into());
    }
    if bytes.len() >= 14 && bytes[0] == 0x80 && bytes[2..14] == LEGACY_MAGIC {
        return Err("the file uses torch.save's legacy format (PyTorch before 1.6, or \
                    _use_new_zipfile_serialization=False), which coca-wgpu does not read; load it with torch.load and \
                    save it again with torch.save, or convert it to safetensors"
            .into());
    }
    if bytes[0] == 0x80 {
        return Err("the file is a bare pickle, not a torch.save zip archive; convert it to safetensors".into());
    }
    if bytes.len() > 8 && bytes[8] == b'{' {
        return Err("the file is not a torch.save zip archive but looks like safetensors; name it *.safetensors".into());
    }
    Err("the file is not a torch.save zip archive (it does not start with a zip header)".into())
}

/// Returns the folder name, with its slash, that torch.save puts every entry under.
fn archive_prefix(archive: &zip::Archive) -> Result<String, String> {
    let mut prefixes = archive
        .names()
        .iter()
        .filter_map(|name| name.strip_suffix("data.pkl"))
        .filter(|prefix| prefix.ends_with('/') && prefix.matches('/').count() == 1);
    match (prefixes.next(), prefixes.next()) {
        (Some(prefix), None) => Ok(prefix.to_string()),
        (None, _) => Err("the zip archive has no `<folder>/data.pkl` entry, so it is not a torch.save checkpoint".into()),
        (Some(first), Some(second)) => Err(format!(
            "the zip archive has several data.pkl entries (`{first}data.pkl`, `{second}data.pkl`), so it is not one \
             torch.save checkpoint"
        )),
    }
}

/// Reads the byteorder record. torch 2.15 reads an archive without one as little-endian.
fn is_big_endian(archive: &zip::Archive, prefix: &str) -> Result<bool, String> {
    let name = format!("{prefix}byteorder");
    if !archive.contains(&name) {
        return Ok(false);
    }
    match archive.read(&name)? {
        b"little" => Ok(false),
        b"big" => Ok(true),
        other => Err(format!(
            "the byteorder record is `{}`, neither `little` nor `big`",
            String::from_utf8_lossy(&other[..other.len().min(16)])
        )),
    }
}

/// Unwraps the state dict as open_clip's `load_state_dict` does and returns its tensors by name.
fn state_dict_tensors(root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, String> {
    let Value::Dict(mut dict) = root.clone() else {
        return Err(format!("the pickle contains a {}, not a dictionary; {NOT_A_TENSOR_DICTIONARY}", root.type_name()));
    };
    let wrapped = dict.items.borrow().get("state_dict").cloned();
    match wrapped {
        Some(Value::Dict(inner)) => dict = inner,
        Some(other) => return Err(format!("the `state_dict` entry is a {}, not a dictionary", other.type_name())),
        None => {}
    }

    let dict = dict.items.borrow();
    // open_clip strips the first 7 characters of every key when the first key starts with
    // "module"; this strips "module." where it is present.
    let strip_module = match dict.entries.first() {
        None => return Err("the state dict is empty".into()),
        Some((Key::Str(first), _)) => first.starts_with("module."),
        Some((Key::Int(_), _)) => false,
    };

    let mut tensors = Vec::with_capacity(dict.entries.len());
    for (key, value) in &dict.entries {
        let key = match key {
            Key::Str(key) => key,
            Key::Int(number) => return Err(format!("state dict key {number} is an int, not a tensor name")),
        };
        let Value::Tensor(tensor) = value else {
            return Err(format!(
                "state dict entry `{key}` is a {}, not a tensor; {NOT_A_TENSOR_DICTIONARY}",
                value.type_name()
            ));
        };
        let name = if strip_module { key.strip_prefix("module.").unwrap_or(key) } else { key };
        tensors.push((name.to_string(), tensor.clone()));
    }
    Ok(tensors)
}

/// Reads a tensor's elements from its storage's bytes in row-major order, honoring the storage
/// offset and strides, and widens them to f32.
fn tensor_values(name: &str, tensor: &TensorRef, data: &[u8], big_endian: bool) -> Result<Vec<f32>, String> {
    let storage = &tensor.storage;
    let dtype = storage.dtype;
    if !matches!(dtype, StorageType::Float32 | StorageType::Float16 | StorageType::BFloat16) {
        return Err(format!(
            "tensor `{name}` is stored as torch.{}; only float32, float16 and bfloat16 tensors are supported",
            dtype.class_name()
        ));
    }
    let expected_bytes = storage.numel.checked_mul(dtype.element_size());
    if expected_bytes != Some(data.len()) {
        return Err(format!(
            "the storage of tensor `{name}` (data/{}) has {} bytes, but the pickle declares {} elements of \
             torch.{} ({} bytes); the file is truncated or corrupt",
            storage.key,
            data.len(),
            storage.numel,
            dtype.class_name(),
            storage.numel.saturating_mul(dtype.element_size())
        ));
    }

    let layout = || format!("shape {:?}, stride {:?}, storage offset {}", tensor.shape, tensor.stride, tensor.storage_offset);
    let numel = tensor.shape.iter().try_fold(1usize, |n, &size| n.checked_mul(size));
    let numel = numel.ok_or_else(|| format!("tensor `{name}` ({}) has more elements than fit in memory", layout()))?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    // NOTE: this bounds each tensor by its storage, not the sum: a crafted file in which many
    // tensors view one large storage still expands to many copies of it in memory.
    if numel > storage.numel {
        return Err(format!(
            "tensor `{name}` ({}) has {numel} elements but its storage only {}: it is an expanded view (a stride \
             of 0 or overlapping strides), which coca-wgpu does not read; save tensor.contiguous() instead",
            layout(),
            storage.numel
        ));
    }
    let last = tensor
        .shape
        .iter()
        .zip(&tensor.stride)
        .try_fold(tensor.storage_offset, |index, (&size, &stride)| index.checked_add((size - 1).checked_mul(stride)?));
    if last.is_none_or(|last| last >= storage.numel) {
        return Err(format!(
            "tensor `{name}` ({}) reads past the end of its storage of {} elements; the file is corrupt",
            layout(),
            storage.numel
        ));
    }

    // Every index below is at most `last`, which is inside the storage checked above.
    let start = tensor.storage_offset;
    if is_row_major(&tensor.shape, &tensor.stride) {
        Ok(decode(data, dtype, big_endian, start..start + numel))
    } else {
        Ok(decode(data, dtype, big_endian, strided_indices(&tensor.shape, &tensor.stride, start).into_iter()))
    }
}

/// Returns whether the strides are those of a contiguous row-major tensor. Dimensions of size 1 may
/// have any stride.
fn is_row_major(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1;
    for (&size, &step) in shape.iter().zip(stride).rev() {
        if size != 1 && step != expected {
            return false;
        }
        expected *= size;
    }
    true
}

/// Storage indices of a strided tensor's elements in row-major order.
fn strided_indices(shape: &[usize], stride: &[usize], offset: usize) -> Vec<usize> {
    let numel: usize = shape.iter().product();
    let mut indices = Vec::with_capacity(numel);
    let mut position = vec![0usize; shape.len()];
    let mut index = offset;
    for _ in 0..numel {
        indices.push(index);
        // Advance the last dimension, and carry into earlier ones like an odometer.
        for dim in (0..shape.len()).rev() {
            // Wrapping arithmetic: a dimension of size 1 may have any stride, and the index
            // returns to a valid value once the carry subtracts it again.
            position[dim] += 1;
            index = index.wrapping_add(stride[dim]);
            if position[dim] < shape[dim] {
                break;
            }
            index = index.wrapping_sub(stride[dim].wrapping_mul(shape[dim]));
            position[dim] = 0;
        }
    }
    indices
}

/// Widens the elements at `indices` to f32. The caller checks that every index is in the storage.
fn decode(data: &[u8], dtype: StorageType, big_endian: bool, indices: impl Iterator<Item = usize>) -> Vec<f32> {
    let half_bits = |i: usize| {
        let raw = [data[2 * i], data[2 * i + 1]];
        if big_endian { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) }
    };
    match dtype {
        StorageType::Float32 => indices
            .map(|i| {
                let raw = [data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]];
                if big_endian { f32::from_be_bytes(raw) } else { f32::from_le_bytes(raw) }
            })
            .collect(),
        StorageType::Float16 => indices.map(|i| half::f16::from_bits(half_bits(i)).to_f32()).collect(),
        StorageType::BFloat16 => indices.map(|i| half::bf16::from_bits(half_bits(i)).to_f32()).collect(),
        other => unreachable!("tensor_values rejects {other:?} before decoding"),
    }
}
