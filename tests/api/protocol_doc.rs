//! docs/protocol.md against the code: every socket event the server listens
//! for and every one it emits (on sockets and SSE) has a row in the
//! protocol's tables, so a client written from the page meets no event it
//! does not know.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first string literal after each occurrence of `call` in `text`.
fn names_after(text: &str, call: &str) -> Vec<String> {
    text.split(call)
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

/// The events the server listens for and the ones it sends.
fn events_in_code() -> BTreeSet<String> {
    let mut files: Vec<String> = std::fs::read_dir(format!("{}/src/socket", env!("CARGO_MANIFEST_DIR")))
        .expect("src/socket")
        .map(|entry| format!("src/socket/{}", entry.unwrap().file_name().to_string_lossy()))
        .collect();
    files.push("src/http/sse.rs".into());
    let mut names = BTreeSet::new();
    for file in files {
        let text = read(&file);
        for call in ["command(s, ", ".emit(", "send_paced(&socket, ", ".event("] {
            names.extend(names_after(&text, call));
        }
    }
    names
}

/// Every `` `name` `` in the first cell of a table row of the page.
fn rows(page: &str) -> BTreeSet<String> {
    let first_cells = page.lines().filter_map(|line| line.strip_prefix("| ")?.split(" |").next());
    first_cells.flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>()).collect()
}

#[test]
fn every_socket_event_is_in_the_protocol() {
    let code = events_in_code();
    for expected in ["feed:ack", "event:append", "feed:replayed", "feed:reset", "auth:expired", "reconnected"] {
        assert!(code.contains(expected), "the scan of the code finds {expected}: {code:?}");
    }
    let documented = rows(&read("docs/protocol.md"));
    let missing: Vec<&String> = code.iter().filter(|name| !documented.contains(*name)).collect();
    assert!(missing.is_empty(), "socket events without a row in docs/protocol.md: {missing:?}");
}

#[test]
fn table_rows_are_read_by_their_first_cell() {
    let page = "| `a:b` / `c:d` | `{ x }` | y |\n| `e:f` | z |\ntext `g:h`\n";
    assert_eq!(rows(page), BTreeSet::from(["a:b".into(), "c:d".into(), "e:f".into()]));
}
