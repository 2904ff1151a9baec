//! Log pages: the records of one group commit stored back to back in ONE
//! sled value, so sled pays one insert per page instead of one per record.
//! Each record keeps its own codec framing (checksum, hash chain, claimed
//! position), so integrity is still checked record by record.
//!
//! ```text
//! page  = frame+
//! frame = record length (u32 LE) | record bytes (codec)
//! ```

/// Bytes of the length in front of each record.
pub const FRAME_LENGTH_BYTES: usize = 4;

/// Appends one record to a page being built.
pub fn push_frame(page: &mut Vec<u8>, record: &[u8]) {
    // Records are capped far below u32::MAX (limits::RECORD_BYTES_MAX).
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    page.extend_from_slice(&len.to_le_bytes());
    page.extend_from_slice(record);
}

/// Appends one record that `write` encodes in place at the end of `page`;
/// on error the page is left as it was.
pub fn push_with<T, E>(
    page: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<T, E>,
) -> Result<T, E> {
    let start = page.len();
    page.extend_from_slice(&[0; FRAME_LENGTH_BYTES]);
    match write(page) {
        Ok(v) => {
            let len = page.len() - start - FRAME_LENGTH_BYTES;
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            page[start..start + FRAME_LENGTH_BYTES].copy_from_slice(&len.to_le_bytes());
            Ok(v)
        }
        Err(e) => {
            page.truncate(start);
            Err(e)
        }
    }
}

/// A page holding `records` in order (for tools and tests that write pages).
pub fn encode<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let total = records
        .iter()
        .map(|r| r.as_ref().len() + FRAME_LENGTH_BYTES)
        .sum();
    let mut page = Vec::with_capacity(total);
    for r in records {
        push_frame(&mut page, r.as_ref());
    }
    page
}

/// The records of a page, in order. Yields `Err` once (then ends) if the
/// framing is broken: a length running past the end of the page.
pub fn frames(page: &[u8]) -> Frames<'_> {
    Frames { rest: page }
}

/// Iterator over the records of a page; see [`frames`].
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let Some((len, after)) = rest.split_first_chunk::<FRAME_LENGTH_BYTES>() else {
            return Some(Err(format!(
                "truncated page: {} stray bytes after the last record",
                rest.len()
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > after.len() {
            return Some(Err(format!(
                "truncated page: a record of {len} bytes has only {} left",
                after.len()
            )));
        }
        let (record, rest) = after.split_at(len);
        self.rest = rest;
        Some(Ok(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_and_truncation_is_reported() {
        let page = encode(&[b"abc".as_slice(), b"", b"defgh"]);
        let got: Vec<_> = frames(&page).collect::<Result<_, _>>().expect("intact");
        assert_eq!(got, vec![b"abc".as_slice(), b"", b"defgh"]);
        let cut = &page[..page.len() - 2];
        let got: Vec<_> = frames(cut).collect();
        assert_eq!(got.len(), 3);
        assert!(got[2].is_err());
        assert!(frames(&page[..2]).next().is_some_and(|f| f.is_err()));
    }

    #[test]
    fn records_written_in_place_frame_like_pushed_ones() {
        let mut page = Vec::new();
        push_with(&mut page, |out| {
            out.extend_from_slice(b"abc");
            Ok::<_, ()>(())
        })
        .expect("written");
        assert!(push_with(&mut page, |out| {
            out.extend_from_slice(b"partial");
            Err::<(), ()>(())
        })
        .is_err());
        assert_eq!(page, encode(&[b"abc"]));
    }
}
