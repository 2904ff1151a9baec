//! Writes the seed corpora under `fuzz/corpus/<target>/`: a handful of
//! valid inputs per target (run from `fuzz/`: `cargo run --example make_seeds`).

use std::fs;
use std::path::Path;

use event_store::sled_store::page;
use ticketlog_fuzz::record_mode;

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    // record_decode: whole records, bodies to seal, a v1 body, a page.
    let chain = ticketlog_fuzz::sample_chain();
    for (rec, bytes) in chain.iter().filter(|(r, _)| r.position % 3 == 1) {
        let kind = rec.payload.kind();
        write(
            "record_decode",
            &format!("raw-{kind}"),
            &[&[record_mode::RAW], &bytes[..]].concat(),
        )?;
        // Version selector 0 = the current schema.
        write(
            "record_decode",
            &format!("body-{kind}"),
            &[&[record_mode::SEALED_BODY, 0, 0], &bytes[39..]].concat(),
        )?;
    }
    let v1 =
        bincode::serde::encode_to_vec(ticketlog_fuzz::v1_comment(3), bincode::config::standard())
            .map_err(std::io::Error::other)?;
    // Version selector 2 = schema version 1.
    write(
        "record_decode",
        "body-v1-comment",
        &[&[record_mode::SEALED_BODY, 2, 0], &v1[..]].concat(),
    )?;
    let records: Vec<&[u8]> = chain.iter().take(4).map(|(_, b)| b.as_slice()).collect();
    write(
        "record_decode",
        "page-4",
        &[&[record_mode::PAGE], &page::encode(&records)[..]].concat(),
    )?;

    // command_body: [route + 10 * principal, state] + JSON body.
    // Principals: 0 reporter, 1 technician, 2.. each role (3 = agent, 7 = admin).
    let bodies: [(u8, u8, &str, &str); 10] = [
        (
            0,
            0,
            "create",
            r#"{"title":"Printer on fire","priority":"high","kind":"incident","location":{"lat":48.85,"lon":2.35,"site":"HQ"},"tags":["printer"],"device":"HP"}"#,
        ),
        (
            1 + 30,
            1,
            "edit",
            r#"{"title":"New title","tags":["a","b"],"priority":"low"}"#,
        ),
        (
            2 + 30,
            1,
            "assign",
            r#"{"assignee_id":"01900000-0000-7000-8000-00000000100b"}"#,
        ),
        (
            3 + 30,
            1,
            "status",
            r#"{"status":"in_progress","note":"on it"}"#,
        ),
        (4, 1, "comment", r#"{"body":"Any news?","internal":false}"#),
        (5 + 30, 1, "dispatch", r#"{"radius_km":25.5}"#),
        (6 + 10, 2, "accept", ""),
        (7 + 10, 2, "decline", r#"{"reason":"sick"}"#),
        (
            8 + 10,
            3,
            "progress",
            r#"{"status":"on_site","location":{"lat":48.86,"lon":2.35}}"#,
        ),
        (
            9 + 10,
            0,
            "location",
            r#"{"lat":48.86,"lon":2.35,"site":"HQ","floor":"2"}"#,
        ),
    ];
    for (who, what, name, json) in bodies {
        write(
            "command_body",
            name,
            &[&[who, what], json.as_bytes()].concat(),
        )?;
    }

    // ws_client_frame: one frame of each type.
    let ticket = ticketlog_fuzz::world::TICKET;
    let frames = [
        (
            "subscribe",
            format!(r#"{{"type":"subscribe","room":"ticket:{ticket}","after":12}}"#),
        ),
        (
            "subscribe-list",
            r#"{"type":"subscribe","room":"tickets"}"#.to_string(),
        ),
        (
            "unsubscribe",
            r#"{"type":"unsubscribe","room":"user:01900000-0000-7000-8000-000000001001"}"#
                .to_string(),
        ),
        (
            "typing",
            format!(r#"{{"type":"typing","room":"ticket:{ticket}","typing":true}}"#),
        ),
        (
            "read",
            format!(r#"{{"type":"read","room":"ticket:{ticket}","position":10}}"#),
        ),
        ("ping", r#"{"type":"ping"}"#.to_string()),
    ];
    for (name, text) in frames {
        write("ws_client_frame", name, text.as_bytes())?;
    }
    Ok(())
}
