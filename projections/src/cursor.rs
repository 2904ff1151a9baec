//! Opaque list cursors. Clients pass them back verbatim; the format may
//! change between versions, so nothing outside this file parses them.

const PREFIX: &str = "c1";

/// The cursor continuing a ticket list after the ticket with creation
/// sequence `seq` (lists run newest first, so the next page has smaller ones).
pub fn encode(seq: u64) -> String {
    // Mixing with a constant keeps clients from mistaking it for a number.
    format!("{PREFIX}{:016x}", seq ^ 0x5a5a_5a5a_5a5a_5a5a)
}

/// The sequence a cursor stands for, or `None` when it is not ours.
pub fn decode(cursor: &str) -> Option<u64> {
    let hex = cursor.strip_prefix(PREFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16)
        .ok()
        .map(|v| v ^ 0x5a5a_5a5a_5a5a_5a5a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        for seq in [0, 1, 499, u64::MAX] {
            assert_eq!(decode(&encode(seq)), Some(seq));
        }
        for bad in [
            "",
            "c1",
            "12",
            "c1zzzzzzzzzzzzzzzz",
            "c10000000000000000000",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
