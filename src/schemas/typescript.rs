//! `eventfeed types typescript`: the catalog as a TypeScript event map, the
//! `Events` of the client library's `EventFeed<Events>`, so that a handler's
//! `e.data` and an `append`'s `data` are typed from the same schemas the
//! server enforces.
//!
//! Each schema becomes the closest TypeScript type: `type`, `properties`
//! with `required`, `additionalProperties`, `items`, `prefixItems`, `enum`,
//! `const`, `anyOf`/`oneOf` (a union), `allOf` (an intersection), and local
//! `$ref`s. What TypeScript cannot say (`minimum`, `pattern`, …) is left to
//! the server; what this does not understand is `unknown`.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::Catalog;

/// How deep `$ref`s are followed: a recursive schema's type stops at `unknown`.
const MAX_DEPTH: usize = 32;

/// The module: `export type Events = { 'invoice:paid': { … }; … };`.
pub fn render(catalog: &Catalog) -> String {
    let mut out = String::from(
        "// The event map of eventfeed's type catalog, written by `eventfeed types typescript`.\n\
         // Use it as `new EventFeed<Events>(url, options)`.\n\n\
         export type Events = {\n",
    );
    for (name, schema) in catalog.iter() {
        if let Some(text) = &schema.description {
            doc_comment(&mut out, text, 1);
        }
        let body = Renderer { root: &schema.schema }.render(&schema.schema, 1, 0);
        let _ = writeln!(out, "  {}: {body};", quote(name));
    }
    out.push_str("};\n");
    out
}

struct Renderer<'a> {
    /// The file's schema: where `#/…` references point.
    root: &'a Value,
}

impl Renderer<'_> {
    /// The type of `schema`, at `indent` levels, having followed `depth` references.
    fn render(&self, schema: &Value, indent: usize, depth: usize) -> String {
        let Value::Object(s) = schema else {
            // `true` allows anything, `false` nothing.
            return if schema == &Value::Bool(false) { "never".into() } else { "unknown".into() };
        };
        let mut parts = Vec::new();
        if let Some(target) = s.get("$ref").and_then(Value::as_str) {
            parts.push(match self.resolve(target) {
                Some(found) if depth < MAX_DEPTH => self.render(found, indent, depth + 1),
                _ => "unknown".into(),
            });
        }
        if let Some(value) = s.get("const") {
            parts.push(literal(value));
        } else if let Some(Value::Array(options)) = s.get("enum") {
            parts.push(union(options.iter().map(literal).collect()));
        } else if let Some(t) = self.typed(s, indent, depth) {
            parts.push(t);
        }
        for (keyword, joiner) in [("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")] {
            if let Some(Value::Array(subs)) = s.get(keyword) {
                let each: Vec<String> = subs.iter().map(|sub| self.render(sub, indent, depth)).collect();
                parts.push(format!("({})", each.join(joiner)));
            }
        }
        if parts.is_empty() { "unknown".into() } else { parts.join(" & ") }
    }

    /// The type that `type` (or, without it, `properties` or `items`) says.
    fn typed(&self, s: &Map<String, Value>, indent: usize, depth: usize) -> Option<String> {
        let names: Vec<&str> = match s.get("type") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ if s.contains_key("properties") || s.contains_key("additionalProperties") => vec!["object"],
            _ if s.contains_key("items") || s.contains_key("prefixItems") => vec!["array"],
            _ => return None,
        };
        let each = names.iter().map(|name| match *name {
            "string" => "string".to_owned(),
            "number" | "integer" => "number".to_owned(),
            "boolean" => "boolean".to_owned(),
            "null" => "null".to_owned(),
            "object" => self.object(s, indent, depth),
            "array" => self.array(s, indent, depth),
            _ => "unknown".to_owned(),
        });
        Some(union(each.collect()))
    }

    fn object(&self, s: &Map<String, Value>, indent: usize, depth: usize) -> String {
        let required: Vec<&str> =
            s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let pad = "  ".repeat(indent + 1);
        let mut out = String::from("{\n");
        for (name, sub) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if let Some(text) = sub.get("description").and_then(Value::as_str) {
                doc_comment(&mut out, text, indent + 1);
            }
            let optional = if required.contains(&name.as_str()) { "" } else { "?" };
            let _ = writeln!(out, "{pad}{}{optional}: {};", quote(name), self.render(sub, indent + 1, depth));
        }
        match s.get("additionalProperties") {
            Some(Value::Bool(false)) => {}
            Some(more @ Value::Object(_)) => {
                // Every declared property must fit the index signature too.
                let _ = writeln!(out, "{pad}[key: string]: {} | undefined;", self.render(more, indent + 1, depth));
            }
            _ => {
                let _ = writeln!(out, "{pad}[key: string]: unknown;");
            }
        }
        out.push_str(&"  ".repeat(indent));
        out.push('}');
        if out == "{\n}" { "Record<string, never>".into() } else { out }
    }

    fn array(&self, s: &Map<String, Value>, indent: usize, depth: usize) -> String {
        let rest = match s.get("items") {
            Some(Value::Bool(false)) => None,
            Some(items) => Some(self.render(items, indent, depth)),
            None => Some("unknown".to_owned()),
        };
        match s.get("prefixItems").and_then(Value::as_array) {
            Some(first) => {
                let mut each: Vec<String> =
                    first.iter().map(|sub| format!("{}?", self.render(sub, indent, depth))).collect();
                if let Some(rest) = rest {
                    each.push(format!("...({rest})[]"));
                }
                format!("[{}]", each.join(", "))
            }
            None => format!("Array<{}>", rest.unwrap_or_else(|| "never".into())),
        }
    }

    /// A reference within the file: `#` or a JSON pointer after it.
    fn resolve(&self, target: &str) -> Option<&Value> {
        let pointer = target.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

/// A union of distinct alternatives, parenthesized when there are several.
fn union(mut each: Vec<String>) -> String {
    each.dedup();
    match each.len() {
        0 => "never".into(),
        1 => each.remove(0),
        _ => format!("({})", each.join(" | ")),
    }
}

/// A JSON value as a TypeScript literal type: JSON's strings, numbers,
/// booleans and null are TypeScript's too; objects and arrays are left wide.
fn literal(value: &Value) -> String {
    match value {
        Value::Object(_) => "Record<string, unknown>".into(),
        Value::Array(_) => "unknown[]".into(),
        scalar => scalar.to_string(),
    }
}

/// A property name, quoted unless it is a plain identifier.
fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain { name.to_owned() } else { Value::String(name.to_owned()).to_string() }
}

/// A `/** … */` comment, with `*/` kept from ending it early.
fn doc_comment(out: &mut String, text: &str, indent: usize) {
    let pad = "  ".repeat(indent);
    let _ = writeln!(out, "{pad}/** {} */", text.replace("*/", "*\\/").replace('\n', " "));
}
