//! A reader for the zip archives that `torch.save` writes: entries are stored uncompressed, local
//! headers may leave sizes and CRC-32 to the central directory (flag bit 3), and the end records
//! may be zip64. Every offset and length read from the file is bounds-checked.

use std::collections::HashMap;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const ZIP64_EXTRA_FIELD: u16 = 0x0001;
/// Compression method 0: the entry's bytes are stored as they are.
const STORED: u16 = 0;

/// One entry of the central directory.
struct Entry {
    method: u16,
    crc32: u32,
    compressed_size: u64,
    uncompressed_size: u64,
    local_header_offset: u64,
    encrypted: bool,
}

/// A zip archive's entries by name, borrowing the archive's bytes.
pub(super) struct Archive<'a> {
    bytes: &'a [u8],
    entries: HashMap<String, Entry>,
    /// Entry names in central directory order.
    names: Vec<String>,
}

impl<'a> Archive<'a> {
    /// Reads the central directory. Entry contents are located and checked by [`Archive::read`].
    pub fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, String> {
        let (count, directory_offset) = find_central_directory(bytes)?;
        let mut archive = Archive { bytes, entries: HashMap::new(), names: Vec::new() };
        let mut position = directory_offset;
        for _ in 0..count {
            let (name, entry, next) = central_entry(bytes, position)?;
            if archive.entries.insert(name.clone(), entry).is_some() {
                return Err(format!("the zip archive lists entry `{name}` twice"));
            }
            archive.names.push(name);
            position = next;
        }
        Ok(archive)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Returns an entry's bytes after checking that it is stored uncompressed, lies inside the
    /// file and matches its CRC-32.
    pub fn read(&self, name: &str) -> Result<&'a [u8], String> {
        let entry = self.entries.get(name).ok_or_else(|| format!("the zip archive has no entry `{name}`"))?;
        if entry.encrypted {
            return Err(format!("zip entry `{name}` is encrypted; torch.save never encrypts entries"));
        }
        if entry.method != STORED || entry.compressed_size != entry.uncompressed_size {
            return Err(format!(
                "zip entry `{name}` is compressed (method {}); torch.save stores entries uncompressed, so the \
                 archive was repacked by another tool: save it again with torch.save or convert it to safetensors",
                entry.method
            ));
        }

        let header = usize::try_from(entry.local_header_offset).ok().filter(|&offset| offset <= self.bytes.len());
        let header = header.ok_or_else(|| truncated(&format!("the local header of `{name}`")))?;
        if read_u32(self.bytes, header)? != LOCAL_HEADER {
            return Err(format!("zip entry `{name}` has no local header at offset {header}; the file is corrupt"));
        }
        let name_length = read_u16(self.bytes, header + 26)? as usize;
        let extra_length = read_u16(self.bytes, header + 28)? as usize;
        let start = header + 30 + name_length + extra_length;
        let data = usize::try_from(entry.compressed_size)
            .ok()
            .and_then(|size| self.bytes.get(start..start.checked_add(size)?))
            .ok_or_else(|| truncated(&format!("entry `{name}` ({} bytes)", entry.compressed_size)))?;

        let crc32 = crc32fast::hash(data);
        if crc32 != entry.crc32 {
            return Err(format!(
                "zip entry `{name}` fails its CRC-32 check (stored {:08x}, computed {crc32:08x}); the file is corrupt",
                entry.crc32
            ));
        }
        Ok(data)
    }
}

fn truncated(part: &str) -> String {
    format!("{part} extends past the end of the file; the file is truncated or corrupt")
}

fn read_u16(bytes: &[u8], offset: usize) -> Result<u16, String> {
    let field = bytes.get(offset..offset.saturating_add(2)).ok_or_else(|| truncated("a zip record"))?;
    Ok(u16::from_le_bytes([field[0], field[1]]))
}

fn read_u32(bytes: &[u8], offset: usize) -> Result<u32, String> {
    let field = bytes.get(offset..offset.saturating_add(4)).ok_or_else(|| truncated("a zip record"))?;
    Ok(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

fn read_u64(bytes: &[u8], offset: usize) -> Result<u64, String> {
    let low = read_u32(bytes, offset)? as u64;
    let high = read_u32(bytes, offset.saturating_add(4))? as u64;
    Ok(high << 32 | low)
}

fn to_offset(value: u64, part: &str) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| truncated(part))
}

/// Returns the number of entries and the offset of the central directory, from the end of
/// central directory record and, when present, its zip64 counterpart.
fn find_central_directory(bytes: &[u8]) -> Result<(u64, usize), String> {
    // The end record is 22 bytes plus a comment of at most 65,535 bytes, at the very end.
    let not_zip = || "no zip end of central directory record; the file is truncated or not a zip archive".to_string();
    let last = bytes.len().checked_sub(22).ok_or_else(not_zip)?;
    let first = last.saturating_sub(65_535);
    let end = (first..=last)
        .rev()
        .find(|&pos| {
            read_u32(bytes, pos).ok() == Some(END_OF_CENTRAL_DIRECTORY)
                && read_u16(bytes, pos + 20).is_ok_and(|comment| pos + 22 + comment as usize == bytes.len())
        })
        .ok_or_else(not_zip)?;
    let mut count = read_u16(bytes, end + 10)? as u64;
    let mut directory_offset = read_u32(bytes, end + 16)? as u64;

    // A zip64 locator right before the end record points to the zip64 end record, whose counts
    // and offsets are 64-bit. torch.save writes one even for small archives.
    if end >= 20 && read_u32(bytes, end - 20)? == ZIP64_END_LOCATOR {
        let zip64_end = to_offset(read_u64(bytes, end - 20 + 8)?, "the zip64 end of central directory record")?;
        if read_u32(bytes, zip64_end)? != ZIP64_END_OF_CENTRAL_DIRECTORY {
            return Err("the zip64 locator points to no zip64 end of central directory record; the file is corrupt".into());
        }
        count = read_u64(bytes, zip64_end + 32)?;
        directory_offset = read_u64(bytes, zip64_end + 48)?;
    }
    Ok((count, to_offset(directory_offset, "the zip central directory")?))
}

/// Parses the central directory header at `position`: returns the entry's name, the entry and
/// the position of the next header.
fn central_entry(bytes: &[u8], position: usize) -> Result<(String, Entry, usize), String> {
    if read_u32(bytes, position)? != CENTRAL_HEADER {
        return Err(format!("no zip central directory header at offset {position}; the file is truncated or corrupt"));
    }
    let flags = read_u16(bytes, position + 8)?;
    let name_length = read_u16(bytes, position + 28)? as usize;
    let extra_length = read_u16(bytes, position + 30)? as usize;
    let comment_length = read_u16(bytes, position + 32)? as usize;
    let name_start = position + 46;
    let name = bytes.get(name_start..name_start + name_length).ok_or_else(|| truncated("a zip entry name"))?;
    let name = String::from_utf8_lossy(name).into_owned();
    let extra_start = name_start + name_length;
    let extra = bytes.get(extra_start..extra_start + extra_length).ok_or_else(|| truncated("a zip extra field"))?;

    let mut entry = Entry {
        method: read_u16(bytes, position + 10)?,
        crc32: read_u32(bytes, position + 16)?,
        compressed_size: read_u32(bytes, position + 20)? as u64,
        uncompressed_size: read_u32(bytes, position + 24)? as u64,
        local_header_offset: read_u32(bytes, position + 42)? as u64,
        encrypted: flags & 1 != 0,
    };
    apply_zip64_extra(extra, &mut entry).map_err(|reason| format!("zip entry `{name}`: {reason}"))?;
    Ok((name, entry, extra_start + extra_length + comment_length))
}

/// Replaces the 32-bit fields saturated at 0xFFFFFFFF by their 64-bit values from the zip64 extra
/// field, which lists only the saturated ones, in this order.
// NOTE: no test covers a saturated field. torch.save writes them only for entries or offsets
// beyond 4 GiB, and the largest released CoCa checkpoint (ViT-L-14 in f32) is about 2.6 GB.
fn apply_zip64_extra(extra: &[u8], entry: &mut Entry) -> Result<(), String> {
    let mut position = 0;
    while position + 4 <= extra.len() {
        let id = read_u16(extra, position)?;
        let size = read_u16(extra, position + 2)? as usize;
        let body = extra
            .get(position + 4..position + 4 + size)
            .ok_or("a field of the extra data is longer than the extra data; the file is corrupt")?;
        if id == ZIP64_EXTRA_FIELD {
            let mut values = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
            for field in [&mut entry.uncompressed_size, &mut entry.compressed_size, &mut entry.local_header_offset] {
                if *field == u32::MAX as u64 {
                    *field = values.next().ok_or("the zip64 extra field is too short")?;
                }
            }
        }
        position += 4 + size;
    }
    Ok(())
}
