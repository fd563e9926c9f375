//! Docker's `filters` query parameter: a JSON object from filter name to values, either
//! `{"status":["running","paused"]}` or the older `{"status":{"running":true}}`.

use std::collections::BTreeMap;

/// Parsed filters: name → accepted values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the query parameter; an empty string means no filters.
    pub fn parse(s: &str) -> Result<Filters, String> {
        if s.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("invalid filters: {e}"))?;
        let obj = v
            .as_object()
            .ok_or("invalid filters: expected a JSON object")?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let vals = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or(format!("invalid filter {k:?}: values must be strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(val, _)| val.clone())
                    .collect(),
                _ => return Err(format!("invalid filter {k:?}")),
            };
            out.insert(k.clone(), vals);
        }
        Ok(Filters(out))
    }

    /// Values given for `name` (empty when the filter is absent).
    pub fn get(&self, name: &str) -> &[String] {
        self.0.get(name).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Whether `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Refuses filter names outside `allowed`, with Docker's wording.
    pub fn check(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!("invalid filter '{k}'"));
            }
        }
        Ok(())
    }

    /// Whether `labels` satisfy every `label` filter (`key` or `key=value`; `!=` negates).
    pub fn match_labels(
        &self,
        name: &str,
        labels: &std::collections::HashMap<String, String>,
    ) -> bool {
        self.get(name).iter().all(|f| {
            if let Some((k, v)) = f.split_once("!=") {
                labels.get(k).is_none_or(|x| x != v)
            } else if let Some((k, v)) = f.split_once('=') {
                labels.get(k).is_some_and(|x| x == v)
            } else {
                labels.contains_key(f.as_str())
            }
        })
    }

    /// Serializes back to the query form.
    pub fn to_query(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        let f = Filters::parse(r#"{"status":["running","paused"],"label":{"a=b":true,"c":false}}"#)
            .unwrap();
        assert_eq!(f.get("status"), ["running", "paused"]);
        assert_eq!(f.get("label"), ["a=b"]);
        assert!(f.check(&["status", "label"]).is_ok());
        assert_eq!(f.check(&["status"]).unwrap_err(), "invalid filter 'label'");
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse("").unwrap().0.is_empty());
        let mut labels = std::collections::HashMap::new();
        labels.insert("a".to_string(), "b".to_string());
        assert!(f.match_labels("label", &labels));
        let f = Filters::parse(r#"{"label":["a!=b"]}"#).unwrap();
        assert!(!f.match_labels("label", &labels));
    }
}
