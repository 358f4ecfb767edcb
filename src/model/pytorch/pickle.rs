//! A restricted unpickler for the `data.pkl` of a `torch.save` archive.
//!
//! It interprets the protocol 2 opcodes that Python's pickler emits for dictionaries, lists,
//! tuples, numbers, strings and tensors, and nothing else. It never imports or calls anything:
//! GLOBAL resolves only the names in [`Global::resolve`], REDUCE only builds an empty
//! dictionary or a tensor description from them, and persistent ids must be torch's storage
//! tuples. Every other construct is an error that names it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Containers nested deeper than this are rejected. A training checkpoint nests about 5 levels
/// (checkpoint, optimizer, state, parameter id, tensor). The limit also keeps the recursive drop
/// of a value from overflowing the stack.
const MAX_DEPTH: usize = 64;

/// The element type of a torch storage, from its class name (`torch.FloatStorage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StorageType {
    Float32,
    Float16,
    BFloat16,
    Float64,
    Int64,
    Int32,
    Int16,
    Int8,
    UInt8,
    Bool,
}

impl StorageType {
    /// Every storage class torch.save emits for real-valued tensors, with its element type.
    const ALL: [(&'static str, StorageType); 10] = [
        ("FloatStorage", StorageType::Float32),
        ("HalfStorage", StorageType::Float16),
        ("BFloat16Storage", StorageType::BFloat16),
        ("DoubleStorage", StorageType::Float64),
        ("LongStorage", StorageType::Int64),
        ("IntStorage", StorageType::Int32),
        ("ShortStorage", StorageType::Int16),
        ("CharStorage", StorageType::Int8),
        ("ByteStorage", StorageType::UInt8),
        ("BoolStorage", StorageType::Bool),
    ];

    pub fn class_name(self) -> &'static str {
        StorageType::ALL.iter().find(|(_, t)| *t == self).map(|(name, _)| *name).unwrap_or("Storage")
    }

    /// Bytes per element.
    pub fn element_size(self) -> usize {
        match self {
            StorageType::Float64 | StorageType::Int64 => 8,
            StorageType::Float32 | StorageType::Int32 => 4,
            StorageType::Float16 | StorageType::BFloat16 | StorageType::Int16 => 2,
            StorageType::Int8 | StorageType::UInt8 | StorageType::Bool => 1,
        }
    }
}

/// A name that GLOBAL may resolve. Storage classes are only tags of persistent ids and are never
/// called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(StorageType),
}

impl Global {
    /// Resolves a GLOBAL name against the allow-list: what torch.save emits for dictionaries of
    /// tensors and parameters.
    fn resolve(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", class) => StorageType::ALL.iter().find(|(n, _)| *n == class).map(|(_, t)| Global::Storage(*t)),
            _ => None,
        }
    }
}

/// A storage that a persistent id refers to: the archive entry `data/<key>` holding `numel`
/// elements of `dtype`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct StorageRef {
    pub dtype: StorageType,
    pub key: String,
    pub numel: usize,
}

/// A strided view of a storage, as `torch._utils._rebuild_tensor_v2` would build it.
#[derive(Debug)]
pub(super) struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub storage_offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A hashable dictionary key. State dicts use strings and optimizer states use integers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Str(Rc<str>),
    Int(i64),
}

/// A dictionary that keeps insertion order, as Python's dict does.
#[derive(Default)]
pub(super) struct Dict {
    pub entries: Vec<(Key, Value)>,
    index: HashMap<Key, usize>,
}

impl Dict {
    pub fn get(&self, key: &str) -> Option<&Value> {
        let key = Key::Str(key.into());
        self.index.get(&key).map(|&i| &self.entries[i].1)
    }

    fn insert(&mut self, key: Key, value: Value) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

/// A mutable container. It is frozen once it is nested in another value, and a pickle that
/// modifies it afterwards (a self-referencing structure) is rejected. So nesting depths stay
/// exact and no reference cycle can form.
pub(super) struct Container<T> {
    pub items: RefCell<T>,
    frozen: Cell<bool>,
    depth: Cell<usize>,
}

impl<T> Container<T> {
    fn new(items: T) -> Rc<Container<T>> {
        Rc::new(Container { items: RefCell::new(items), frozen: Cell::new(false), depth: Cell::new(1) })
    }
}

/// A tuple with its nesting depth.
pub(super) struct Tuple {
    pub items: Vec<Value>,
    depth: usize,
}

/// A Python value. Booleans and floats keep no payload because no caller reads them.
#[derive(Clone)]
pub(super) enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Tuple>),
    List(Rc<Container<Vec<Value>>>),
    Dict(Rc<Container<Dict>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// Returns the Python type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    fn depth(&self) -> usize {
        match self {
            Value::Tuple(tuple) => tuple.depth,
            Value::List(list) => list.depth.get(),
            Value::Dict(dict) => dict.depth.get(),
            _ => 0,
        }
    }

    /// Marks a container as nested, so that it can no longer be modified.
    fn freeze(&self) {
        match self {
            Value::List(list) => list.frozen.set(true),
            Value::Dict(dict) => dict.frozen.set(true),
            _ => {}
        }
    }
}

/// Freezes `child` and returns the depth of a container of depth `parent_depth` once it contains
/// `child`. Fails when that depth exceeds [`MAX_DEPTH`].
fn nest(child: &Value, parent_depth: usize) -> Result<usize, String> {
    child.freeze();
    let depth = parent_depth.max(child.depth() + 1);
    if depth > MAX_DEPTH {
        return Err(format!("the pickle nests containers more than {MAX_DEPTH} levels deep"));
    }
    Ok(depth)
}

fn check_not_frozen<T>(container: &Container<T>, kind: &str) -> Result<(), String> {
    if container.frozen.get() {
        return Err(format!(
            "the pickle modifies a {kind} after nesting it in another value (a self-referencing structure)"
        ));
    }
    Ok(())
}

/// Pickle opcodes by byte, for error messages (Python's `pickletools` names).
const OPCODE_NAMES: &[(u8, &str)] = &[
    (b'(', "MARK"), (b'.', "STOP"), (b'0', "POP"), (b'1', "POP_MARK"), (b'2', "DUP"), (b'F', "FLOAT"),
    (b'I', "INT"), (b'J', "BININT"), (b'K', "BININT1"), (b'L', "LONG"), (b'M', "BININT2"), (b'N', "NONE"),
    (b'P', "PERSID"), (b'Q', "BINPERSID"), (b'R', "REDUCE"), (b'S', "STRING"), (b'T', "BINSTRING"),
    (b'U', "SHORT_BINSTRING"), (b'V', "UNICODE"), (b'X', "BINUNICODE"), (b'a', "APPEND"), (b'b', "BUILD"),
    (b'c', "GLOBAL"), (b'd', "DICT"), (b'}', "EMPTY_DICT"), (b'e', "APPENDS"), (b'g', "GET"), (b'h', "BINGET"),
    (b'i', "INST"), (b'j', "LONG_BINGET"), (b'l', "LIST"), (b']', "EMPTY_LIST"), (b'o', "OBJ"), (b'p', "PUT"),
    (b'q', "BINPUT"), (b'r', "LONG_BINPUT"), (b's', "SETITEM"), (b't', "TUPLE"), (b')', "EMPTY_TUPLE"),
    (b'u', "SETITEMS"), (b'G', "BINFLOAT"), (0x80, "PROTO"), (0x81, "NEWOBJ"), (0x82, "EXT1"), (0x83, "EXT2"),
    (0x84, "EXT4"), (0x85, "TUPLE1"), (0x86, "TUPLE2"), (0x87, "TUPLE3"), (0x88, "NEWTRUE"), (0x89, "NEWFALSE"),
    (0x8a, "LONG1"), (0x8b, "LONG4"), (b'B', "BINBYTES"), (b'C', "SHORT_BINBYTES"), (0x8c, "SHORT_BINUNICODE"),
    (0x8d, "BINUNICODE8"), (0x8e, "BINBYTES8"), (0x8f, "EMPTY_SET"), (0x90, "ADDITEMS"), (0x91, "FROZENSET"),
    (0x92, "NEWOBJ_EX"), (0x93, "STACK_GLOBAL"), (0x94, "MEMOIZE"), (0x95, "FRAME"), (0x96, "BYTEARRAY8"),
    (0x97, "NEXT_BUFFER"), (0x98, "READONLY_BUFFER"),
];

fn opcode_name(opcode: u8) -> String {
    match OPCODE_NAMES.iter().find(|(byte, _)| *byte == opcode) {
        Some((_, name)) => format!("{name} (0x{opcode:02x})"),
        None => format!("0x{opcode:02x}, which is no pickle opcode"),
    }
}

/// The unpickler's state: the input, the stack with its marks, and the memo.
struct Machine<'a> {
    input: &'a [u8],
    position: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Storages by key, so that every tensor viewing one storage shares its description.
    storages: HashMap<String, Rc<StorageRef>>,
}

/// Interprets a pickle and returns the value that STOP returns.
pub(super) fn unpickle(input: &[u8]) -> Result<Value, String> {
    let mut machine = Machine {
        input,
        position: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        storages: HashMap::new(),
    };
    loop {
        let start = machine.position;
        let opcode = machine.take(1)?[0];
        if let Some(value) = machine.step(opcode).map_err(|reason| format!("{reason} (at byte {start} of data.pkl)"))? {
            return Ok(value);
        }
    }
}

impl Machine<'_> {
    fn take(&mut self, length: usize) -> Result<&[u8], String> {
        let end = self.position.checked_add(length).filter(|&end| end <= self.input.len());
        let end = end.ok_or("data.pkl ends before its STOP opcode; the file is truncated or corrupt")?;
        let bytes = &self.input[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returns N bytes"))
    }

    fn take_line(&mut self) -> Result<String, String> {
        let rest = &self.input[self.position..];
        let length = rest.iter().position(|&b| b == b'\n').ok_or("the pickle ends inside a GLOBAL name")?;
        let line = std::str::from_utf8(&rest[..length]).map_err(|_| "a GLOBAL name is not valid UTF-8".to_string())?;
        let line = line.to_string();
        self.position += length + 1;
        Ok(line)
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("the pickle pops from an empty stack".into());
        }
        Ok(self.stack.pop().expect("stack is longer than the floor"))
    }

    fn top(&self) -> Result<&Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("the pickle reads the top of an empty stack".into());
        }
        Ok(self.stack.last().expect("stack is longer than the floor"))
    }

    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("the pickle has no MARK for a TUPLE, APPENDS or SETITEMS")?;
        Ok(self.stack.split_off(mark))
    }

    fn tuple(items: Vec<Value>) -> Result<Value, String> {
        let mut depth = 1;
        for item in &items {
            depth = nest(item, depth)?;
        }
        Ok(Value::Tuple(Rc::new(Tuple { items, depth })))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), String> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), String> {
        let value = self.memo.get(&index).ok_or_else(|| format!("the pickle reads memo entry {index}, which was never set"))?;
        self.stack.push(value.clone());
        Ok(())
    }

    /// Executes one opcode. Returns the result at STOP.
    fn step(&mut self, opcode: u8) -> Result<Option<Value>, String> {
        match opcode {
            0x80 => {
                let protocol = self.take(1)?[0];
                if protocol > 2 {
                    return Err(format!(
                        "pickle protocol {protocol} is not supported; torch.save writes protocol 2 unless \
                         pickle_protocol is set, so save the file again with the default"
                    ));
                }
            }
            b'.' => return self.pop().map(Some),
            b'(' => self.marks.push(self.stack.len()),
            b'N' => self.stack.push(Value::None),
            0x88 | 0x89 => self.stack.push(Value::Bool),
            b'K' => {
                let value = self.take(1)?[0];
                self.stack.push(Value::Int(value as i64));
            }
            b'M' => {
                let value = u16::from_le_bytes(self.take_array()?);
                self.stack.push(Value::Int(value as i64));
            }
            b'J' => {
                let value = i32::from_le_bytes(self.take_array()?);
                self.stack.push(Value::Int(value as i64));
            }
            0x8a => {
                let value = self.long1()?;
                self.stack.push(Value::Int(value));
            }
            b'G' => {
                self.take(8)?;
                self.stack.push(Value::Float);
            }
            b'X' => {
                let length = u32::from_le_bytes(self.take_array()?) as usize;
                let bytes = self.take(length)?;
                let text: Rc<str> =
                    std::str::from_utf8(bytes).map_err(|_| "a BINUNICODE string is not valid UTF-8".to_string())?.into();
                self.stack.push(Value::Str(text));
            }
            b')' => self.stack.push(Value::Tuple(Rc::new(Tuple { items: Vec::new(), depth: 1 }))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Machine::tuple(items)?);
            }
            0x85..=0x87 => {
                let count = (opcode - 0x84) as usize;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.stack.push(Machine::tuple(items)?);
            }
            b']' => self.stack.push(Value::List(Container::new(Vec::new()))),
            b'}' => self.stack.push(Value::Dict(Container::new(Dict::default()))),
            b'a' => {
                let item = self.pop()?;
                self.append(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![key, value])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'q' => {
                let index = self.take(1)?[0];
                self.memo_put(index as u32)?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.take_array()?);
                self.memo_put(index)?;
            }
            b'h' => {
                let index = self.take(1)?[0];
                self.memo_get(index as u32)?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.take_array()?);
                self.memo_get(index)?;
            }
            b'c' => {
                let module = self.take_line()?;
                let name = self.take_line()?;
                let global = Global::resolve(&module, &name).ok_or_else(|| match (module.as_str(), name.ends_with("Storage")) {
                    ("torch", true) => format!(
                        "the pickle refers to storage type `torch.{name}`, which is not a real-valued tensor type"
                    ),
                    _ => format!("the pickle refers to `{module}.{name}`, which is not on the allow-list of a tensor dictionary"),
                })?;
                self.stack.push(Value::Global(global));
            }
            b'R' => {
                let arguments = self.pop()?;
                let callable = self.pop()?;
                let result = self.reduce(callable, arguments)?;
                self.stack.push(result);
            }
            b'Q' => {
                let id = self.pop()?;
                let storage = self.persistent_load(id)?;
                self.stack.push(storage);
            }
            b'b' => {
                let state = self.pop()?;
                self.build(state)?;
            }
            other => {
                return Err(format!(
                    "unsupported pickle opcode {}; torch.save does not use it for a tensor dictionary",
                    opcode_name(other)
                ))
            }
        }
        Ok(None)
    }

    /// Reads LONG1: a length byte, then a little-endian two's complement integer of that many bytes.
    fn long1(&mut self) -> Result<i64, String> {
        let length = self.take(1)?[0] as usize;
        if length > 8 {
            return Err(format!("a LONG1 integer of {length} bytes does not fit in 64 bits"));
        }
        let bytes = self.take(length)?;
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let mut buffer = if negative { [0xff; 8] } else { [0; 8] };
        buffer[..length].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buffer))
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        let Value::List(list) = self.top()?.clone() else {
            return Err(format!("APPEND on a {}; only lists can be appended to", self.top()?.type_name()));
        };
        let mut depth = list.depth.get();
        for item in &items {
            depth = nest(item, depth)?;
        }
        check_not_frozen(&list, "list")?;
        list.depth.set(depth);
        list.items.borrow_mut().extend(items);
        Ok(())
    }

    /// Adds key-value pairs (alternating in `items`) to the dictionary on top of the stack.
    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        let Value::Dict(dict) = self.top()?.clone() else {
            return Err(format!("SETITEM on a {}; only dictionaries can have items set", self.top()?.type_name()));
        };
        if items.len() % 2 != 0 {
            return Err("SETITEMS has a key without a value".into());
        }
        let mut depth = dict.depth.get();
        for item in &items {
            depth = nest(item, depth)?;
        }
        check_not_frozen(&dict, "dictionary")?;
        dict.depth.set(depth);
        let mut entries = dict.items.borrow_mut();
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            let key = match key {
                Value::Str(text) => Key::Str(text),
                Value::Int(number) => Key::Int(number),
                other => return Err(format!("a dictionary key is a {}; only str and int keys are supported", other.type_name())),
            };
            entries.insert(key, value);
        }
        Ok(())
    }

    /// Applies REDUCE: the only callables are the allowed globals, and none of them runs code.
    fn reduce(&mut self, callable: Value, arguments: Value) -> Result<Value, String> {
        let Value::Tuple(arguments) = arguments else {
            return Err(format!("REDUCE arguments are a {}, not a tuple", arguments.type_name()));
        };
        let arguments = &arguments.items;
        match callable {
            Value::Global(Global::OrderedDict) if arguments.is_empty() => Ok(Value::Dict(Container::new(Dict::default()))),
            Value::Global(Global::OrderedDict) => {
                Err("collections.OrderedDict is called with arguments; torch.save calls it with none".into())
            }
            Value::Global(Global::RebuildTensorV2) => rebuild_tensor_v2(arguments),
            Value::Global(Global::RebuildParameter) => match arguments.first() {
                Some(Value::Tensor(tensor)) if arguments.len() == 3 => Ok(Value::Tensor(tensor.clone())),
                _ => Err("torch._utils._rebuild_parameter expects (tensor, requires_grad, backward_hooks)".into()),
            },
            Value::Global(Global::Storage(dtype)) => Err(format!(
                "REDUCE calls `torch.{}`; torch.save only uses storage classes in persistent ids",
                dtype.class_name()
            )),
            other => Err(format!("REDUCE calls a {}, which is not an allowed callable", other.type_name())),
        }
    }

    /// Resolves a persistent id, which torch.save writes as
    /// `('storage', storage_type, key, location, numel)`.
    fn persistent_load(&mut self, id: Value) -> Result<Value, String> {
        let invalid = || "a persistent id is not a ('storage', storage type, key, location, numel) tuple".to_string();
        let Value::Tuple(id) = id else { return Err(invalid()) };
        let [Value::Str(kind), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), Value::Int(numel)] =
            id.items.as_slice()
        else {
            return Err(invalid());
        };
        if &**kind != "storage" {
            return Err(invalid());
        }
        let numel = usize::try_from(*numel).map_err(|_| format!("storage `{key}` has an out-of-range size {numel}"))?;

        let storage = StorageRef { dtype: *dtype, key: key.to_string(), numel };
        if let Some(known) = self.storages.get(&storage.key) {
            if **known != storage {
                return Err(format!(
                    "storage `{key}` is declared twice with different types or sizes ({} x {}, then {} x {numel})",
                    known.numel,
                    known.dtype.class_name(),
                    dtype.class_name()
                ));
            }
            return Ok(Value::Storage(known.clone()));
        }
        let storage = Rc::new(storage);
        self.storages.insert(storage.key.clone(), storage.clone());
        Ok(Value::Storage(storage))
    }

    /// Applies BUILD, which torch.save uses to attach `_metadata` to a state dict (an
    /// OrderedDict). That state only records module versions and is dropped.
    fn build(&mut self, state: Value) -> Result<(), String> {
        match (self.top()?, &state) {
            (Value::Dict(_), Value::Dict(_) | Value::None) => Ok(()),
            (target, _) => Err(format!(
                "BUILD sets the state of a {} from a {}; torch.save only sets a state dict's _metadata",
                target.type_name(),
                state.type_name()
            )),
        }
    }
}

/// Builds the tensor description that `torch._utils._rebuild_tensor_v2(storage, storage_offset,
/// size, stride, requires_grad, backward_hooks[, metadata])` would return.
fn rebuild_tensor_v2(arguments: &[Value]) -> Result<Value, String> {
    let usage = "torch._utils._rebuild_tensor_v2 expects (storage, storage_offset, size, stride, requires_grad, \
                 backward_hooks[, metadata])";
    let (storage, offset, size, stride, metadata) = match arguments {
        [Value::Storage(storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), Value::Bool, _] => {
            (storage, offset, size, stride, None)
        }
        [Value::Storage(storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), Value::Bool, _, metadata] => {
            (storage, offset, size, stride, Some(metadata))
        }
        _ => return Err(usage.into()),
    };
    if let Some(Value::Dict(metadata)) = metadata {
        if !metadata.items.borrow().entries.is_empty() {
            return Err("a tensor carries metadata (its conjugate or negative bit is set); save tensor.resolve_neg() \
                        or tensor.resolve_conj() instead"
                .into());
        }
    }

    let sizes = |tuple: &Tuple, what: &str| -> Result<Vec<usize>, String> {
        tuple
            .items
            .iter()
            .map(|item| match item {
                Value::Int(n) => usize::try_from(*n).map_err(|_| format!("a tensor {what} is out of range ({n})")),
                other => Err(format!("a tensor {what} is a {}, not an int", other.type_name())),
            })
            .collect()
    };
    let shape = sizes(size, "size")?;
    let stride = sizes(stride, "stride")?;
    if shape.len() != stride.len() {
        return Err(format!("a tensor has {} sizes but {} strides", shape.len(), stride.len()));
    }
    let storage_offset =
        usize::try_from(*offset).map_err(|_| format!("a tensor's storage offset {offset} is out of range"))?;
    Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), storage_offset, shape, stride })))
}
