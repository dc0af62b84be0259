//! The deployment files agree with their documentation: `docker-compose.yml`
//! parses and has the services, ports and settings docs/operations.md
//! describes, the `Dockerfile` serves on the port the compose file maps, and
//! every setting the server reads is documented in docs/configuration.md and
//! in `.env.example`. No Docker engine is needed.

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

const DATABASE_URL: &str = "postgres://postgres:postgres@postgres:5432/eventfeed";
/// The nodes and the host port each is published on.
const NODES: [(&str, u16); 2] = [("eventfeed-1", 3001), ("eventfeed-2", 3002)];

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

fn compose() -> Yaml {
    let text = read("docker-compose.yml");
    let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is valid YAML");
    assert_eq!(docs.len(), 1, "docker-compose.yml holds one document");
    docs.remove(0)
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let svc = &doc["services"][name];
    assert!(svc.as_hash().is_some(), "docker-compose.yml has no service {name:?}");
    svc
}

/// A service's `environment`, in either of compose's forms (map or `K=V` list).
fn env<'a>(svc: &'a Yaml, key: &str) -> Option<&'a str> {
    match &svc["environment"] {
        Yaml::Hash(_) => svc["environment"][key].as_str(),
        Yaml::Array(items) => {
            items.iter().filter_map(Yaml::as_str).find_map(|item| item.strip_prefix(key)?.strip_prefix('='))
        }
        _ => None,
    }
}

/// (host port, container port) of each `ports` entry, short or long syntax.
fn ports(svc: &Yaml) -> Vec<(u16, u16)> {
    let entries = svc["ports"].as_vec().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| match entry {
            Yaml::String(short) => {
                let mut parts = short.rsplitn(3, ':');
                let container = parts.next()?.parse().ok()?;
                let host = parts.next()?.parse().ok()?;
                Some((host, container))
            }
            Yaml::Hash(_) => {
                let published = match &entry["published"] {
                    Yaml::Integer(n) => u16::try_from(*n).ok()?,
                    Yaml::String(s) => s.parse().ok()?,
                    _ => return None,
                };
                Some((published, u16::try_from(entry["target"].as_i64()?).ok()?))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn compose_has_postgres_and_two_nodes() {
    let doc = compose();
    let names: BTreeSet<&str> =
        doc["services"].as_hash().expect("docker-compose.yml has services").keys().filter_map(Yaml::as_str).collect();
    assert_eq!(names, BTreeSet::from(["postgres", "eventfeed-1", "eventfeed-2"]));

    let pg = service(&doc, "postgres");
    let image = pg["image"].as_str().expect("postgres has an image");
    assert!(image == "postgres:16" || image.starts_with("postgres:16."), "postgres image is {image}");
    assert!(!pg["healthcheck"]["test"].is_badvalue(), "postgres has a healthcheck");
    // The nodes' DATABASE_URL names this user, password and database.
    assert_eq!(env(pg, "POSTGRES_PASSWORD"), Some("postgres"));
    assert_eq!(env(pg, "POSTGRES_DB"), Some("eventfeed"));
    assert!(matches!(env(pg, "POSTGRES_USER"), None | Some("postgres")));

    let volumes = pg["volumes"].as_vec().expect("postgres has a volume");
    let data = volumes
        .iter()
        .filter_map(Yaml::as_str)
        .find_map(|v| v.strip_suffix(":/var/lib/postgresql/data"))
        .expect("postgres keeps /var/lib/postgresql/data in a volume");
    assert!(
        doc["volumes"].as_hash().is_some_and(|h| h.contains_key(&Yaml::String(data.to_owned()))),
        "the volume {data:?} is declared under the top-level volumes"
    );
}

#[test]
fn nodes_share_postgres_and_a_secret_on_their_own_ports() {
    let doc = compose();
    let mut secrets = BTreeSet::new();
    for (name, host_port) in NODES {
        let node = service(&doc, name);
        let build = &node["build"];
        let (context, dockerfile) = match build {
            Yaml::String(context) => (context.as_str(), "Dockerfile"),
            _ => (build["context"].as_str().unwrap_or("."), build["dockerfile"].as_str().unwrap_or("Dockerfile")),
        };
        assert_eq!(context, ".", "{name} is built from the repository");
        assert_eq!(dockerfile, "Dockerfile", "{name} is built from the Dockerfile");

        assert!(ports(node).contains(&(host_port, 3000)), "{name} publishes host port {host_port} to 3000");
        assert_eq!(env(node, "DATABASE_URL"), Some(DATABASE_URL), "{name}'s DATABASE_URL");
        let secret = env(node, "EVENTFEED_JWT_SECRET").unwrap_or_else(|| panic!("{name} has EVENTFEED_JWT_SECRET"));
        assert!(secret.contains("dev-secret-change-me"), "{name}: the README's default secret, got {secret}");
        secrets.insert(secret);
        assert_eq!(
            node["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} waits for a healthy postgres"
        );
    }
    assert_eq!(secrets.len(), 1, "both nodes verify tokens with the same secret");
}

/// A stopped node drains (5 s by default), then may take up to 10 s to
/// answer what it has received: compose must not kill it sooner.
#[test]
fn nodes_have_time_to_drain() {
    let doc = compose();
    for (name, _) in NODES {
        let grace = service(&doc, name)["stop_grace_period"].as_str().unwrap_or("10s (compose's default)");
        let seconds: u64 = grace.strip_suffix('s').and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(seconds >= 15, "{name}: stop_grace_period {grace} leaves no time for the drain plus 10 s");
    }
}

#[test]
fn the_operations_page_describes_the_compose_services() {
    let page = read("docs/operations.md");
    assert!(page.contains("docker compose up"), "docs/operations.md says how to start the compose file");
    assert!(page.contains("`postgres:16`"), "docs/operations.md names the postgres image");
    assert!(page.contains(DATABASE_URL), "docs/operations.md gives the nodes' DATABASE_URL");
    for name in ["postgres"].into_iter().chain(NODES.map(|(name, _)| name)) {
        assert!(page.contains(&format!("`{name}`")), "docs/operations.md names the service `{name}`");
    }
    for (name, port) in NODES {
        assert!(
            page.contains(&format!("127.0.0.1:{port}")),
            "docs/operations.md gives {name}'s address 127.0.0.1:{port}"
        );
    }
}

#[test]
fn dockerfile_serves_on_the_mapped_port() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    assert!(lines.contains(&"EXPOSE 3000"));
    assert!(lines.contains(&"ENV EVENTFEED_ADDR=0.0.0.0:3000"));
    assert!(lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2, "a multi-stage build");
    assert!(lines.iter().any(|l| l.starts_with("FROM debian:") && l.contains("-slim")), "a slim runtime image");
    let user = lines.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("the image sets a USER");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "the image runs as a non-root user, not {user}");
}

/// Every `env = "…"` the server's flags read.
fn settings() -> BTreeSet<String> {
    let mut names = BTreeSet::from(["RUST_LOG".to_owned()]);
    for file in ["src/config.rs", "src/cli.rs"] {
        let text = read(file);
        for rest in text.split("env = \"").skip(1) {
            if let Some(end) = rest.find('"') {
                names.insert(rest[..end].to_owned());
            }
        }
    }
    names
}

#[test]
fn every_setting_is_documented() {
    let names = settings();
    assert!(names.contains("DATABASE_URL") && names.contains("EVENTFEED_JWT_SECRET"), "found {names:?}");
    let page = read("docs/configuration.md");
    let example = read(".env.example");
    for name in &names {
        assert!(page.contains(&format!("| `{name}` |")), "docs/configuration.md's table has a row for {name}");
        assert!(example.contains(&format!("{name}=")), ".env.example lists {name}");
    }
}
