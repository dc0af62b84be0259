//! Type filters: the patterns a reader subscribes with (`invoice:*`,
//! `expense:approved`), parsed once and matched against every event delivered.

use super::{EventType, InvalidInput, invalid};

/// Most patterns in one type filter: matching stays cheap for every event
/// delivered live, however many sockets subscribe.
pub const MAX_TYPE_PATTERNS: usize = 100;

/// A list of type patterns: exact types, or a prefix ending in `:*`.
/// An empty filter matches every type. Both lists are sorted, so matching
/// costs a binary search per `:` of the type, not a scan of the patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter {
    exact: Vec<String>,
    /// Each ends with `:`.
    prefixes: Vec<String>,
}

impl TypeFilter {
    pub fn all() -> Self {
        TypeFilter::default()
    }

    /// Parses patterns; `*` alone means every type.
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidInput> {
        let mut filter = TypeFilter::default();
        for (i, p) in patterns.into_iter().map(str::trim).enumerate() {
            if i == MAX_TYPE_PATTERNS {
                return invalid(format!("at most {MAX_TYPE_PATTERNS} type patterns"));
            }
            if p == "*" {
                return Ok(TypeFilter::all());
            }
            match p.strip_suffix('*') {
                Some(prefix) if prefix.ends_with(':') => {
                    EventType::well_formed(&format!("{prefix}x"))
                        .map_err(|_| InvalidInput(format!("type pattern {p:?} is not valid")))?;
                    filter.prefixes.push(prefix.to_owned());
                }
                _ => filter.exact.push(EventType::well_formed(p)?.0),
            }
        }
        for list in [&mut filter.exact, &mut filter.prefixes] {
            list.sort_unstable();
            list.dedup();
        }
        Ok(filter)
    }

    /// Parses a comma list, as in `?types=invoice:*,expense:approved`.
    pub fn parse_list(list: &str) -> Result<Self, InvalidInput> {
        if list.trim().is_empty() {
            return Ok(TypeFilter::all());
        }
        TypeFilter::parse(list.split(','))
    }

    pub fn is_all(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    pub fn matches(&self, event_type: &str) -> bool {
        let has = |list: &[String], s: &str| list.binary_search_by(|p| p.as_str().cmp(s)).is_ok();
        self.is_all()
            || has(&self.exact, event_type)
            || event_type.match_indices(':').any(|(i, _)| has(&self.prefixes, &event_type[..=i]))
    }

    pub fn exact(&self) -> &[String] {
        &self.exact
    }

    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters() {
        let f = TypeFilter::parse_list("invoice:*, expense:approved").unwrap();
        assert!(f.matches("invoice:paid"));
        assert!(f.matches("invoice:line:added"));
        assert!(f.matches("expense:approved"));
        assert!(!f.matches("expense:rejected"));
        assert!(!f.matches("invoices:paid"));
        assert!(TypeFilter::parse_list("").unwrap().matches("x:y"));
        assert!(TypeFilter::parse_list("*").unwrap().is_all());
        for bad in ["invoice*", ":*", "inv oice:*", "a:b*", "*:x"] {
            assert!(TypeFilter::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_filters_are_bounded_and_match_every_prefix() {
        let f = TypeFilter::parse_list("a:b:*, x:y, a:*, x:y").unwrap();
        assert_eq!(f.exact(), ["x:y"]);
        for t in ["a:q", "a:b:c", "x:y"] {
            assert!(f.matches(t), "{t}");
        }
        assert!(!f.matches("x:z") && !f.matches("ab:c"));
        let many: Vec<String> = (0..=MAX_TYPE_PATTERNS).map(|i| format!("t:{i}")).collect();
        assert!(TypeFilter::parse(many.iter().map(String::as_str)).is_err());
        assert!(TypeFilter::parse(many[..MAX_TYPE_PATTERNS].iter().map(String::as_str)).is_ok());
    }
}
